"""Filters at the two doors: memory drafts on their way in, search results on their way out.

Plugins register the filters (``memoryd_register_filters``); the plugin host
contains each call (:mod:`memoryd.core.contain`). These functions only run
them in order, each on what the one before returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from memoryd.core.model import MemoryDraft, ScoredMemory
from memoryd.core.ports import DraftFilter, ResultFilter


async def screen_draft(filters: Sequence[DraftFilter], draft: MemoryDraft) -> MemoryDraft | None:
    """``draft`` after every filter, or None as soon as one rejects it."""
    for f in filters:
        screened = await f.on_draft(draft)
        if screened is None:
            return None
        draft = screened
    return draft


async def screen_drafts(
    filters: Sequence[DraftFilter], drafts: Sequence[MemoryDraft]
) -> list[MemoryDraft]:
    """The drafts the filters let in (redacted as they say), in order; a draft with no
    piece left to embed is left out."""
    if not filters:
        return list(drafts)
    kept: list[MemoryDraft] = []
    for draft in drafts:
        screened = await screen_draft(filters, draft)
        if screened is not None and screened.embed_texts:
            kept.append(screened)
    return kept


async def screen_results(
    filters: Sequence[ResultFilter], results: Iterable[ScoredMemory], limit: int
) -> list[ScoredMemory]:
    """Up to ``limit`` results the filters let out, in order; a dropped one makes room."""
    if not filters:
        return list(results)[:limit]
    kept: list[ScoredMemory] = []
    for result in results:
        if len(kept) >= limit:
            break
        memory = result.memory
        for f in filters:
            found = await f.on_result(memory)
            if found is None:
                break
            memory = found
        else:
            kept.append(attrs.evolve(result, memory=memory))
    return kept


async def screen_contexts(
    filters: Sequence[DraftFilter],
    updates: Sequence[tuple[int, str]],
    drafts: Sequence[MemoryDraft],
) -> list[tuple[int, str]]:
    """Earlier memories' new keyword contexts (which quote the new turns), screened.

    Each goes to the filters as a *context-only* draft: empty ``text`` and
    ``embed_texts``, the context in ``keyword_context``. A rejected one becomes "".
    """
    if not filters or not updates:
        return list(updates)
    said_at = min(d.said_at for d in drafts) if drafts else None
    screened: list[tuple[int, str]] = []
    for position, context in updates:
        if said_at is None:
            screened.append((position, ""))
            continue
        draft = MemoryDraft(
            text="", embed_texts=(), positions=(position,), said_at=said_at, keyword_context=context
        )
        found = await screen_draft(filters, draft)
        screened.append((position, found.keyword_context if found is not None else ""))
    return screened
