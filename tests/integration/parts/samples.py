"""Files made in the test, to post as parts: PDFs written by hand, DOCX, HTML, CSV, PNG."""

from __future__ import annotations

import io
from typing import Any

from memoryd.testing.samples import b64, data_uri, zip_bomb
from memoryd.testing.samples import png_header as png_header_only

__all__ = ["b64", "data_uri", "png_header_only", "zip_bomb"]  # re-exported for the tests


def pdf(pages: list[str]) -> bytes:
    """A valid PDF of ``pages``, one line of Helvetica text each, with a correct xref table."""
    n = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode(),
    ]
    font = 3 + 2 * n
    for i, line in enumerate(pages):
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 18 Tf 72 720 Td ({escaped}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def docx(paragraph: str, table: list[list[str]]) -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    document.add_paragraph(paragraph)
    grid = document.add_table(rows=len(table), cols=len(table[0]))
    for r, row in enumerate(table):
        for c, value in enumerate(row):
            grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def png_with_text(text: str) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (1000, 160), "white")
    ImageDraw.Draw(image).text((20, 50), text, fill="black", font=ImageFont.load_default(size=48))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def openai_file(data: bytes, filename: str, *, as_uri: str | None = None) -> dict[str, Any]:
    """OpenAI's chat shape: ``{"type": "file", "file": {"file_data", "filename"}}``."""
    file_data = data_uri(as_uri, data) if as_uri else b64(data)
    return {"type": "file", "file": {"file_data": file_data, "filename": filename}}


def spec_file(data: bytes, mime: str) -> dict[str, Any]:
    """The chat spec's shape: ``{"type": "file", "data": <base64>, "mimeType": ...}``."""
    return {"type": "file", "data": b64(data), "mimeType": mime}
