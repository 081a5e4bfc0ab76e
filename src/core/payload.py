"""The bytes of an inline image or file part (a ``data:`` URI or base64), decoded within a limit.

Pure and bounded: the decoded size is worked out from the encoded length
before anything is decoded, so a part over ``max_bytes`` costs nothing. A URL
that is not a ``data:`` URI is never fetched here (handlers only get bytes).
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse

from attrs import frozen

from memoryd.core.model import ContentPart

_DATA_URI = re.compile(r"^data:([^,;]*)((?:;[^,;=]+=[^,;]*)*)(;base64)?,", re.IGNORECASE)
_WHITESPACE = re.compile(rb"\s+")
#: Characters of valid base64 (no space, no punctuation) past which it is surely base64, even
#: of bytes that are not UTF-8, and not a text that happens to spell valid base64.
_SURELY_BASE64 = 64
#: MIME types whose inline ``data`` may be the text itself rather than base64.
_TEXT_LIKE = ("text/", "application/json", "application/xml", "application/csv")


@frozen
class Payload:
    """A part's decoded bytes, with the MIME type it declares (the part's own, else the URI's)."""

    data: bytes
    mime_type: str | None = None
    filename: str | None = None


class PayloadError(ValueError):
    """A part whose inline data cannot be read: the message says why and which limit."""


def is_text_like(mime: str | None) -> bool:
    return (mime or "").lower().startswith(_TEXT_LIKE)


def inline_source(part: ContentPart) -> str | None:
    """The part's inline data: ``data``, else a ``data:`` URI in ``url``; None if it has none."""
    if part.data:
        return part.data
    if part.url and part.url[:5].lower() == "data:":
        return part.url
    return None


def declared_mime(part: ContentPart) -> str | None:
    """The MIME type the part declares, or the one its ``data:`` URI names."""
    if part.mime_type:
        return part.mime_type.split(";", 1)[0].strip().lower() or None
    source = inline_source(part)
    if source is not None:
        found = _DATA_URI.match(source[:512])
        if found and found.group(1):
            return found.group(1).strip().lower()
    return None


def _b64_size(encoded: str) -> int:
    return len(encoded) * 3 // 4


def decode(part: ContentPart, *, max_bytes: int) -> Payload:
    """The part's inline bytes; raises :class:`PayloadError` if there are none or too many.

    A ``data:`` URI is decoded as it says (base64 or percent-encoded); other
    ``data`` is base64, except that a text-like MIME type (``text/*``, JSON)
    whose data is not valid base64 is taken as the text itself.
    """
    source = inline_source(part)
    if source is None:
        raise PayloadError("the part has no inline data (a URL is not fetched)")
    mime = declared_mime(part)
    found = _DATA_URI.match(source[:512])
    if found is not None:
        body = source[found.end() :]
        if found.group(3):
            return Payload(_b64decode(body, max_bytes), mime, part.filename)
        if len(body) > max_bytes * 3:
            raise PayloadError(_too_large(len(body), max_bytes))
        data = urllib.parse.unquote_to_bytes(body)
        if len(data) > max_bytes:
            raise PayloadError(_too_large(len(data), max_bytes))
        return Payload(data, mime, part.filename)
    try:
        data = _b64decode(source, max_bytes)
    except PayloadError:
        if not is_text_like(mime):
            raise
    else:
        if not is_text_like(mime) or _is_utf8(data) or len(source) >= _SURELY_BASE64:
            return Payload(data, mime, part.filename)
        # Text that happens to be valid base64 ("abcd") is the text itself.
    data = source.encode()
    if len(data) > max_bytes:
        raise PayloadError(_too_large(len(data), max_bytes))
    return Payload(data, mime, part.filename)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _too_large(size: int, max_bytes: int) -> str:
    return (
        f"the part holds about {size} bytes, over the limit of {max_bytes} (setting part_max_bytes)"
    )


def _b64decode(encoded: str, max_bytes: int) -> bytes:
    if _b64_size(encoded) > max_bytes + 3 and _b64_size(encoded.strip()) > max_bytes + 3:
        raise PayloadError(_too_large(_b64_size(encoded), max_bytes))
    raw = _WHITESPACE.sub(b"", encoded.encode("ascii", "replace"))
    if _b64_size(raw.decode("ascii")) > max_bytes + 3:
        raise PayloadError(_too_large(_b64_size(raw.decode("ascii")), max_bytes))
    try:
        if b"-" in raw or b"_" in raw:
            data = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
        else:
            data = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError("the part's data is not valid base64") from None
    if len(data) > max_bytes:
        raise PayloadError(_too_large(len(data), max_bytes))
    return data
