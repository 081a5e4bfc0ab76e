"""Reading a ``multipart/form-data`` body (``POST /v3/documents/file``) within the body limits.

The body is read whole by :func:`._body.read_body` (``max_body_bytes``, also
once decompressed; ``body_timeout``), then split at its boundary here: every
byte of a file part is kept as sent.
"""

from __future__ import annotations

from email.message import Message

from aiohttp import web
from attrs import field, frozen

from memoryd.adapters.http._body import read_body
from memoryd.core.errors import FieldError, ValidationFailed

#: Parts one form may have.
MAX_PARTS = 32
#: Bytes of one part's headers.
MAX_HEADER_BYTES = 8 * 1024


@frozen
class FormPart:
    name: str
    data: bytes = field(repr=lambda d: f"<{len(d)} bytes>")
    filename: str | None = None
    content_type: str | None = None

    def text(self) -> str:
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad(f"the form field {self.name} is not UTF-8 text", self.name) from None


def _bad(message: str, path: str = "") -> ValidationFailed:
    return ValidationFailed([FieldError(path=path, message=message)])


def _header_params(value: str) -> Message:
    holder = Message()
    holder["content-type"] = value
    return holder


async def read_form(
    request: web.Request, *, max_bytes: int, time_limit: float
) -> dict[str, FormPart]:
    """The form's parts by name (the first of each name); a 400 for anything else."""
    content_type = request.headers.get("Content-Type", "")
    boundary = _header_params(content_type).get_param("boundary")
    if not content_type.lower().startswith("multipart/form-data") or not isinstance(boundary, str):
        raise _bad("send the file as multipart/form-data (a part named file)")
    raw = await read_body(request, max_bytes=max_bytes, time_limit=time_limit)
    return parse_form(raw, boundary)


def parse_form(raw: bytes, boundary: str) -> dict[str, FormPart]:
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + raw).split(delimiter)
    if len(chunks) < 2:
        raise _bad("the multipart body has no parts")
    found: dict[str, FormPart] = {}
    for count, chunk in enumerate(chunks[1:], start=1):
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        if count > MAX_PARTS:
            raise _bad(f"the form may have at most {MAX_PARTS} parts")
        head, sep, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep or len(head) > MAX_HEADER_BYTES:
            raise _bad("a multipart part's headers are malformed")
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").split("\r\n"):
            key, colon, value = line.partition(":")
            if colon:
                headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        holder = Message()
        holder["content-disposition"] = disposition
        name = holder.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            continue  # a part of no name is no field (unknown fields are ignored too)
        filename = holder.get_filename()
        if name not in found:
            found[name] = FormPart(
                name=name,
                data=data,
                filename=filename,
                content_type=(headers.get("content-type") or "").split(";", 1)[0].strip() or None,
            )
    return found
