"""The hook specifications: every hook a memoryd plugin can implement.

Hooks are synchronous *registration* hooks: they register factories or return
objects, and the async work lives in those objects' methods. None of them is
``firstresult``: the host calls every plugin's implementation itself, with
that plugin's own context, so that each result is known to come from its
plugin. An implementation may take any subset of a spec's arguments.

docs/plugins.md documents each one; tests/docs/test_plugins_doc.py checks
that its signatures are these.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import pluggy

from memoryd.core.ports import PartHandler, Reranker
from memoryd.plugins.context import PluginContext
from memoryd.plugins.registry import RegisterChatModel, RegisterEmbedder, RegisterStorage

PROJECT = "memoryd"
#: Entry-point group that external plugins register under.
ENTRY_POINT_GROUP = "memoryd"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def memoryd_plugin_settings() -> type[Any] | None:
    """Return the attrs class of the plugin's own settings section, or None.

    Called once at load, before any other hook. The section is the TOML table
    ``[plugins.NAME]`` and the variables ``MEMORYD_PLUGIN_NAME__KEY``; memoryd
    validates it against the class at start (errors name the plugin and the
    key) and hands the instance to every hook as ``context.config``. Fields
    declared ``repr=False`` are secrets: ``memoryd config`` shows them as ``***``.
    """
    raise NotImplementedError


@hookspec
def memoryd_register_storage(register: RegisterStorage, context: PluginContext[Any]) -> None:
    """Register storage backends: ``register(name, factory)``.

    Called at load. ``storage = name`` picks one. The factory gets a context
    with ``embedder`` (None when memoryd only needs the key store, as
    ``memoryd keys`` does) and ``session``, and returns an async context
    manager yielding a ``StorageBackend`` (``conversations``, ``threads``,
    ``keys``, ``index``, ``close()``); leaving it closes the backend.
    """
    raise NotImplementedError


@hookspec
def memoryd_register_embedders(register: RegisterEmbedder, context: PluginContext[Any]) -> None:
    """Register embedders: ``register(name, factory)``.

    Called at load. ``embedder = name`` picks one. The factory gets a context
    with ``session`` and ``tokens`` and returns an async context manager
    yielding a loaded ``Embedder``; leaving it releases the model.
    """
    raise NotImplementedError


@hookspec
def memoryd_register_chat_models(register: RegisterChatModel, context: PluginContext[Any]) -> None:
    """Register chat models: ``register(name, factory, token_headroom=None, available=None)``.

    Called at load. ``llm = name`` picks one; ``llm = "auto"`` the first one
    registered with an ``available`` check that passes. The factory gets a
    context with ``session``, ``tokens`` and ``embedder`` and returns an async
    context manager yielding a ``ChatModel``. ``token_headroom`` is the share
    of the context window the prompt leaves free for this model's tokenizer.
    """
    raise NotImplementedError


@hookspec
def memoryd_register_part_handlers(context: PluginContext[Any]) -> Sequence[PartHandler]:
    """Return content-part handlers (images, files, ...).

    Called once at start, with every resource in the context. A handler turns
    a non-text part of a message into text that joins the message's memories
    at ingest and the context of a chat. For each part, the first handler
    whose ``accepts(part)`` is true is used; installed plugins are asked
    before the built-in ones. Each call of ``to_text`` is contained.
    """
    raise NotImplementedError


@hookspec
def memoryd_register_rerankers(context: PluginContext[Any]) -> Sequence[Reranker]:
    """Return rerankers, each with the ``name`` the ``rerankers`` setting picks it by.

    Called once at start, with every resource in the context. The rerankers the
    setting names run, in its order, on the candidate pool of a search that
    asks (``rerank: true``; ``chat_rerank`` for a chat's). A reranker reorders
    the pool (it may rescore, but not add, drop or repeat a candidate); an
    answer that is not a reordering is ignored. Two plugins' rerankers of one
    name are an error naming both. Built-in memoryd registers none.
    """
    raise NotImplementedError


@hookspec
def memoryd_register_filters(context: PluginContext[Any]) -> Sequence[object]:
    """Return filters: objects with ``on_draft``, ``on_result`` or both (and a ``name``).

    Called once at start, with every resource in the context. ``on_draft(draft)``
    (a ``DraftFilter``) screens each memory draft at ingest, before it is
    embedded: it returns the draft (allow), a changed one (redact) or None
    (reject). ``on_result(memory)`` (a ``ResultFilter``) screens each search
    result before it is returned or given to a chat (and so cited): the memory,
    a changed one with the same ``id``, or None (drop). Every filter registered
    runs, in call order; disable a plugin to turn its filters off. Each call is
    contained, and a filter that fails keeps out what it was screening.
    """
    raise NotImplementedError


@hookspec
def memoryd_lifespan(context: PluginContext[Any]) -> AbstractAsyncContextManager[None] | None:
    """Return an async context manager for startup and shutdown code, or None.

    Called once at start, with every resource in the context. memoryd enters
    it before serving (an error there stops the start, naming the plugin) and
    leaves it on shutdown, in reverse order (errors then are logged).
    """
    raise NotImplementedError
