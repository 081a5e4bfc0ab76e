"""The hook for further bench parts: what a part gets, and what it hands back to the report.

A part outside ``bench.runner`` (``bench.queued``: queued ingest, for one) is a
:class:`HookedPart`, listed in ``bench.runner.HOOKED``. ``--only NAME`` picks it
like a built-in part, and a full run (and ``--quick``) runs it after the
built-in parts of each embedder's run. ``run`` gets a :class:`PartContext`
and returns its result, whatever shape suits it; ``section`` turns that
result into the report's Markdown lines and ``targets`` into rows of the
report's target table. The result is kept in ``Results.hooked[name]`` for
the tests to check.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import frozen

if TYPE_CHECKING:
    from bench._corpus import Corpus
    from bench.locomo_eval import Sample
    from bench.runner import Mode

#: A target row: what, the target, the measured figure, met (None: not judged).
TargetRow = tuple[str, str, str, bool | None]


@frozen
class PartContext:
    """What a hooked part may use: the run's arguments, mode, scratch space and servers' env."""

    args: argparse.Namespace
    #: ``bench.runner.FULL`` or ``QUICK`` (or the mode a test made): the part's N comes from
    #: ``quick`` below or from its own constants.
    mode: Mode
    quick: bool
    #: Scratch space of this run (this embedder's, with ``--embedder``): the part's own subdir.
    work: Path
    #: ``MEMORYD_*`` settings for every memoryd the part starts (``MEMORYD_EMBEDDER`` ...):
    #: ``bench._server.start_server(dir, env=ctx.env)``.
    env: Mapping[str, str]
    samples: Sequence[Sample]
    corpus: Corpus
    log: Callable[[str], None]


def no_targets(_: Any) -> list[TargetRow]:
    return []


@frozen
class HookedPart:
    name: str
    #: One line for the log ("queued ingest: ...").
    title: str
    run: Callable[[PartContext], Any]
    #: The report's section for a result (a ``## ...`` heading first).
    section: Callable[[Any], list[str]]
    targets: Callable[[Any], list[TargetRow]] = no_targets


@frozen
class HookedResult:
    value: Any
    section: list[str]
    targets: list[TargetRow]
