"""Built-in content-part handling: text only, and no remote fetches.

Images and files are kept with their message but contribute no text by
default: memoryd never fetches a URL unless a deployer installs a plugin
that does. A part that carries its own description (a file part's inline
text data) contributes that text.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import frozen

from memoryd.core.model import ContentPart
from memoryd.core.ports import PartHandler
from memoryd.plugins.hookspecs import hookimpl


@frozen
class InlineTextFileHandler:
    """A file part whose inline data is plain text contributes that text."""

    max_chars: int = 20_000

    def accepts(self, part: ContentPart) -> bool:
        return (
            part.type == "file"
            and part.data is not None
            and (part.mime_type or "").startswith("text/")
        )

    async def to_text(self, part: ContentPart) -> str | None:
        return (part.data or "")[: self.max_chars] or None


@hookimpl
def memoryd_register_part_handlers() -> Sequence[PartHandler]:
    return [InlineTextFileHandler()]
