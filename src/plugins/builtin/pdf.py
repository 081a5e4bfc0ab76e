"""Built-in part handler ``pdf``: the text of a PDF sent inline (``memoryd[files]``).

It reads with pypdfium2 (PDFium; a few milliseconds a page), else with pypdf
(pure Python), and stops at ``max_pages`` pages and at its time limit (a
little under ``plugin_timeout``): the text read so far is kept, and a
warning says where it stopped. A corrupt, truncated or encrypted PDF is
skipped with a warning. PDFium is not thread-safe, so one PDF is read at a
time.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Sequence

from attrs import frozen

from memoryd.core.contain import BlockingPartHandler
from memoryd.core.part_results import PartText
from memoryd.core.payload import Payload
from memoryd.plugins.builtin._files import (
    Deadline,
    Unreadable,
    available,
    file_handler,
)
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl

_PDFIUM = threading.Lock()


@frozen
class PdfSettings:
    """``[plugins.pdf]``."""

    #: Pages read from each PDF; the rest are left out (and logged).
    max_pages: int = 20


@frozen
class _Reader:
    max_pages: int
    log: logging.Logger
    pdfium: bool

    def __call__(self, payload: Payload, deadline: Deadline) -> str | PartText | None:
        if b"%PDF-" not in payload.data[:1024]:
            raise Unreadable("it is not a PDF (no %PDF- header)")
        read = self._pdfium if self.pdfium else self._pypdf
        pages, total = read(payload, deadline)
        text = "\n\n".join(p.strip() for p in pages if p.strip()) or None
        if len(pages) < total:
            why = (
                f"max_pages = {self.max_pages}, setting [plugins.pdf]"
                if len(pages) >= self.max_pages
                else "its time limit (plugin_timeout)"
            )
            self.log.warning(
                "plugin 'pdf': read %d of %d pages of %r (%s)",
                len(pages),
                total,
                payload.filename or "a PDF",
                why,
            )
            return PartText(text, f"read {len(pages)} of {total} pages ({why})")
        return text

    def _pdfium(self, payload: Payload, deadline: Deadline) -> tuple[list[str], int]:
        import pypdfium2 as pdfium

        pages: list[str] = []
        with _PDFIUM:
            try:
                document = pdfium.PdfDocument(payload.data)
            except pdfium.PdfiumError as exc:
                raise Unreadable(f"it is not a readable PDF ({exc})") from None
            try:
                total = len(document)
                for i in range(min(total, self.max_pages)):
                    if deadline.passed():
                        break
                    page = document[i]
                    textpage = page.get_textpage()
                    pages.append(textpage.get_text_range())
                    textpage.close()
                    page.close()
            finally:
                document.close()
        return pages, total

    def _pypdf(self, payload: Payload, deadline: Deadline) -> tuple[list[str], int]:
        import pypdf

        try:
            reader = pypdf.PdfReader(io.BytesIO(payload.data))
            if reader.is_encrypted:
                raise Unreadable("it is encrypted")
            total = len(reader.pages)
        except pypdf.errors.PyPdfError as exc:
            raise Unreadable(f"it is not a readable PDF ({exc})") from None
        pages: list[str] = []
        for i in range(min(total, self.max_pages)):
            if deadline.passed():
                break
            pages.append(reader.pages[i].extract_text() or "")
        return pages, total


@hookimpl
def memoryd_plugin_settings() -> type[PdfSettings]:
    return PdfSettings


@hookimpl
def memoryd_register_part_handlers(
    context: PluginContext[PdfSettings],
) -> Sequence[BlockingPartHandler]:
    import importlib.util

    pdfium = importlib.util.find_spec("pypdfium2") is not None
    if not pdfium and not available(context, "pypdf", extra="files"):
        return []
    reader = _Reader(max_pages=max(1, context.config.max_pages), log=context.log, pdfium=pdfium)
    return [
        file_handler(
            context, reader, mimes=("application/pdf", "application/x-pdf"), extensions=("pdf",)
        )
    ]
