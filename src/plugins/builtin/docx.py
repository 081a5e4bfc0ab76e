"""Built-in part handler ``docx``: a Word document's paragraphs and tables (``memoryd[files]``).

A DOCX is a zip archive: before python-docx opens it, its directory is
checked, so that a zip bomb is refused unread (more than ``max_unpacked_bytes``
unpacked in all, or a member that unpacks more than ``max_ratio`` times its
packed size). Tables become one ``header: value`` line per row. It stops at
its time limit, keeping what it read.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator, Sequence
from typing import Any

from attrs import frozen

from memoryd.core.contain import BlockingPartHandler
from memoryd.core.payload import Payload
from memoryd.plugins.builtin._files import (
    Deadline,
    Unreadable,
    available,
    file_handler,
)
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@frozen
class DocxSettings:
    """``[plugins.docx]``."""

    #: Bytes a document may unpack to, all members together.
    max_unpacked_bytes: int = 50 * 1024 * 1024
    #: How many times its packed size one member may unpack to.
    max_ratio: int = 200


def check_zip(data: bytes, *, max_unpacked: int, max_ratio: int) -> None:
    """Raise :class:`Unreadable` for an archive that is not a zip or would unpack too much."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise Unreadable(f"it is not a readable DOCX (zip: {exc})") from None
    if len(members) > 10_000:
        raise Unreadable(f"it has {len(members)} members, a zip bomb's shape")
    total = sum(m.file_size for m in members)
    if total > max_unpacked:
        raise Unreadable(
            f"it would unpack to {total} bytes, over max_unpacked_bytes = {max_unpacked} "
            "(setting [plugins.docx])"
        )
    for m in members:
        if m.file_size > 1024 * 1024 and m.file_size > max_ratio * max(1, m.compress_size):
            raise Unreadable(
                f"its member {m.filename!r} unpacks {m.file_size // max(1, m.compress_size)} "
                f"times its size, over max_ratio = {max_ratio} (setting [plugins.docx])"
            )


def _rows(table: Any) -> Iterator[str]:
    rows = [[" ".join(c.text.split()) for c in row.cells] for row in table.rows]
    if not rows:
        return
    header, *body = rows
    if not body:
        yield " | ".join(c for c in header if c)
    for row in body:
        cells = [f"{h}: {v}" if h else v for h, v in zip(header, row, strict=False) if v]
        if cells:
            yield "; ".join(dict.fromkeys(cells))


@frozen
class _Reader:
    config: DocxSettings

    def __call__(self, payload: Payload, deadline: Deadline) -> str | None:
        import docx

        check_zip(
            payload.data,
            max_unpacked=self.config.max_unpacked_bytes,
            max_ratio=self.config.max_ratio,
        )
        try:
            document = docx.Document(io.BytesIO(payload.data))
        except (KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise Unreadable(f"it is not a readable DOCX ({type(exc).__name__}: {exc})") from None
        lines: list[str] = [p.text for p in document.paragraphs if p.text.strip()]
        for table in document.tables:
            if deadline.passed():
                break
            lines.extend(_rows(table))
        return "\n".join(lines) or None


@hookimpl
def memoryd_plugin_settings() -> type[DocxSettings]:
    return DocxSettings


@hookimpl
def memoryd_register_part_handlers(
    context: PluginContext[DocxSettings],
) -> Sequence[BlockingPartHandler]:
    if not available(context, "docx", extra="files"):
        return []
    return [
        file_handler(context, _Reader(context.config), mimes=(DOCX_MIME,), extensions=("docx",))
    ]
