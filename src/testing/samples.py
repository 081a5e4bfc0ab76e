"""Sample content parts for a part handler's tests: every way a part arrives, and junk.

``data_uri_part``, ``base64_part`` and ``url_part`` build parts of each shape
the API accepts (the URLs are under ``.test``, a name that never resolves:
a handler must not fetch them anyway). :func:`corrupt_parts` is what a
handler must survive without raising: truncated, mislabelled, hostile and
malformed parts. :func:`sample_candidates` is a reranker's pool.
"""

from __future__ import annotations

import base64
import io
import struct
import zipfile
import zlib
from datetime import UTC, datetime, timedelta

from memoryd.core.model import ContentPart, Memory
from memoryd.core.ports import RerankCandidate

#: An address that never resolves (RFC 6761 ``.test``): for parts that only carry a URL.
URL_BASE = "https://files.example.test"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{b64(data)}"


def data_uri_part(
    data: bytes, mime: str, *, filename: str | None = None, image: bool = False
) -> ContentPart:
    """A part whose bytes are a ``data:`` URI: an image's ``url``, or a file's ``data``."""
    if image:
        return ContentPart(type="image_url", url=data_uri(mime, data), filename=filename)
    return ContentPart(type="file", data=data_uri(mime, data), filename=filename)


def base64_part(data: bytes, mime: str | None, *, filename: str | None = None) -> ContentPart:
    """A file part of bare base64 ``data`` with its ``mimeType`` (the chat spec's shape)."""
    return ContentPart(type="file", data=b64(data), mime_type=mime, filename=filename)


def url_part(path: str = "/cat.png", *, image: bool = True) -> ContentPart:
    """A part that is only a URL (``https://files.example.test/...``): never fetch it."""
    url = URL_BASE + path
    return ContentPart.image(url) if image else ContentPart(type="file", url=url)


def text_file(text: str = "The lighthouse keeper feeds seventeen cats.\n") -> bytes:
    return text.encode("utf-8")


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels and holds almost none: a pixel bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def zip_bomb(unpacked_mib: int = 64) -> bytes:
    """A DOCX-shaped zip whose one member unpacks to ``unpacked_mib`` MiB of zeros (tens of KB)."""
    out = io.BytesIO()
    chunk = bytes(1024 * 1024)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            for _ in range(unpacked_mib):
                member.write(chunk)
    return out.getvalue()


#: A few bytes of each kind's start, cut off: what an interrupted upload leaves.
_TRUNCATED = {
    "application/pdf": b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 o",
    "image/png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": b"PK\x03\x04\x14",
    "application/zip": b"PK\x03\x04\x14\x00",
}
_NAMES = {
    "application/pdf": "a.pdf",
    "image/png": "a.png",
    "image/jpeg": "a.jpg",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "a.docx",
    "application/zip": "a.docx",
    "text/html": "a.html",
    "text/csv": "a.csv",
    "application/json": "a.json",
    "text/plain": "a.txt",
}
_JUNK = bytes(range(256)) * 8


def corrupt_parts() -> dict[str, ContentPart]:
    """Parts no handler can read, by name: each must give None or a note, never an exception.

    Truncated files, random bytes under each common type, invalid base64,
    a pixel bomb (a PNG claiming 60000 x 60000 pixels), a zip bomb named
    ``.docx``, an empty file, a URL alone, and JSON and CSV that do not parse.
    """
    parts: dict[str, ContentPart] = {}
    for mime, head in _TRUNCATED.items():
        parts[f"truncated {mime}"] = base64_part(head, mime, filename=_NAMES[mime])
    for mime, name in _NAMES.items():
        parts[f"random bytes as {mime}"] = base64_part(_JUNK, mime, filename=name)
        parts[f"random bytes named {name}"] = base64_part(_JUNK, None, filename=name)
    parts["invalid base64"] = ContentPart(type="file", data="%%% not base64 %%%", mime_type="x/y")
    parts["invalid base64 data URI"] = ContentPart(
        type="image_url", url="data:image/png;base64,%%%%"
    )
    parts["a data URI of no type"] = ContentPart(type="file", data="data:,hello")
    parts["pixel bomb"] = data_uri_part(png_header(60_000, 60_000), "image/png", image=True)
    parts["pixel bomb under the limit of Pillow"] = data_uri_part(
        png_header(12_000, 12_000), "image/png", image=True
    )
    parts["zip bomb"] = base64_part(zip_bomb(), "application/zip", filename="bomb.docx")
    parts["empty pdf"] = base64_part(b"", "application/pdf", filename="empty.pdf")
    parts["a URL alone"] = url_part("/report.pdf", image=False)
    parts["an image URL alone"] = url_part("/cat.png")
    parts["broken JSON"] = base64_part(b'{"a": [1, 2', "application/json", filename="a.json")
    parts["CSV of one broken quote"] = base64_part(b'a,b\n"1,2\n', "text/csv", filename="a.csv")
    parts["NUL bytes as text"] = base64_part(b"\x00" * 4096, "text/plain", filename="a.txt")
    return parts


def sample_parts() -> dict[str, ContentPart]:
    """One part of each shape: a data URI, bare base64, a URL, and a corrupt one."""
    text = text_file()
    return {
        "data URI": data_uri_part(text, "text/plain", filename="keeper.txt"),
        "bare base64": base64_part(text, "text/plain", filename="keeper.txt"),
        "URL": url_part("/keeper.txt", image=False),
        "corrupt": base64_part(_TRUNCATED["application/pdf"], "application/pdf"),
    }


def sample_candidates(n: int = 6, *, dimension: int = 8) -> list[RerankCandidate]:
    """A reranker's pool: ``n`` memories with pieces' unit vectors, two near-duplicates among them.

    Dates differ by a day each and scores fall, so a reranker has something to
    reorder by; ``vectors`` are 2-D numpy arrays (one unit row: one piece each).
    """
    import numpy as np

    start = datetime(2024, 1, 1, tzinfo=UTC)
    pool: list[RerankCandidate] = []
    for i in range(n):
        words = "golden retriever Max" if i < 2 else f"topic {i} of the sample pool"
        memory = Memory(
            id=f"m{i}",
            tenant_id="sample",
            conversation_id=f"c{i}",
            text=f"{words} ({i})",
            positions=(0,),
            said_at=start + timedelta(days=i),
        )
        row = np.zeros(dimension, dtype=np.float32)
        row[0 if i < 2 else i % dimension] = 1.0
        row[(i + 1) % dimension] += 0.1
        vectors = (row / np.linalg.norm(row)).reshape(1, dimension)
        score = 1.0 - i * 0.1
        pool.append(RerankCandidate(memory=memory, similarity=score, score=score, vectors=vectors))
    return pool
