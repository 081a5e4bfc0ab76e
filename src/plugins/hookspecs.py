"""The hook specifications: every hook a memoryd plugin can implement.

Hooks are synchronous *registration* hooks: each returns objects (handlers,
rerankers) whose methods do the async work. None of them is ``firstresult``;
the host collects every plugin's answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

from memoryd.core.ports import PartHandler, Reranker

PROJECT = "memoryd"
#: Entry-point group that external plugins register under.
ENTRY_POINT_GROUP = "memoryd"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def memoryd_register_part_handlers() -> Sequence[PartHandler]:
    """Return content-part handlers (images, files, ...).

    A handler turns a non-text part of a message into text that joins the
    message's memories at ingest and the context of a chat. For each part,
    the first handler whose ``accepts(part)`` is true is used; plugins
    registered later (external ones) are asked before the built-in ones.
    """
    raise NotImplementedError


@hookspec
def memoryd_register_rerankers() -> Sequence[Reranker]:
    """Return rerankers, applied in order to search results.

    A reranker reorders the results of a search (it may not add or drop
    any). Built-in memoryd registers none by default.
    """
    raise NotImplementedError
