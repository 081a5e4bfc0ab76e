"""Content parts: which handler turns a non-text part into text (one rule for ingest and chat)."""

from __future__ import annotations

from collections.abc import Sequence

from memoryd.core.model import ContentPart
from memoryd.core.part_results import PartText
from memoryd.core.ports import PartHandler


def handler_for(handlers: Sequence[PartHandler], part: ContentPart) -> PartHandler | None:
    """The first handler whose ``accepts(part)`` is true, or None."""
    return next((h for h in handlers if h.accepts(part)), None)


def part_label(index: int, part: ContentPart) -> str:
    """How a memory says which part its text came from: ``[part 1, file report.pdf]``.

    ``index`` is the part's place in the message's ``content`` array, counted
    from 0 as in ``content[1]``; the file name is the client's, when it sent one.
    """
    kind = "image" if part.type in ("image", "image_url") else part.type
    name = " ".join((part.filename or "").split())[:120]
    return f"[part {index}, {kind} {name}]" if name else f"[part {index}, {kind}]"


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
    if isinstance(text, PartText):
        text = text.text
    return text if text and text.strip() else None
