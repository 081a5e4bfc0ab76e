"""Content parts: which handler turns a non-text part into text (one rule for ingest and chat)."""

from __future__ import annotations

from collections.abc import Sequence

from memoryd.core.model import ContentPart
from memoryd.core.ports import PartHandler


def handler_for(handlers: Sequence[PartHandler], part: ContentPart) -> PartHandler | None:
    """The first handler whose ``accepts(part)`` is true, or None."""
    return next((h for h in handlers if h.accepts(part)), None)


async def part_text(handlers: Sequence[PartHandler], part: ContentPart) -> str | None:
    """The text that the first handler accepting ``part`` makes of it.

    None when no handler accepts it, or when the handler yields nothing (blank
    text counts as nothing). Text parts are the caller's: this is for images
    and files.
    """
    handler = handler_for(handlers, part)
    if handler is None:
        return None
    text = await handler.to_text(part)
    return text if text and text.strip() else None
