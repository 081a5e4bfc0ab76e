"""What the built-in file and image handlers share: matching a part, decoding it, failing softly.

A handler here is an attrs object whose ``to_text`` is a plain function, so
memoryd runs it in a worker thread under ``plugin_timeout`` (core/contain.py).
Its ``extract`` gets the part's bytes, already decoded within
``part_max_bytes``, and a :class:`Deadline` to check between pages or rows.
Anything it cannot read (corrupt, truncated, hostile, over a limit) is
skipped: the reason is logged as a warning naming the plugin and returned
as a :class:`PartText` note (the ingest response's ``parts`` shows it), the
part contributes no text, and the request goes on. Nothing here fetches a
URL: memoryd fetches (when ``fetch_urls`` is on) and hands the bytes over inline.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from typing import Any

from attrs import define, field, frozen

from memoryd.core.model import ContentPart
from memoryd.core.part_results import PartText
from memoryd.core.payload import Payload, PayloadError, declared_mime, decode, inline_source

#: The first characters of each format's base64, to recognise a part that names no type.
_B64_MAGIC = {
    "JVBERi0": "application/pdf",
    "UEsDB": "application/zip",
    "iVBORw0KGgo": "image/png",
    "/9j/": "image/jpeg",
    "R0lGOD": "image/gif",
    "UklGR": "image/webp",
}


class Unreadable(Exception):
    """The part cannot be read; the message says why (and which limit or setting)."""


@frozen
class Deadline:
    """A time limit inside a handler: checked between pages, rows or images."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def passed(self) -> bool:
        return time.monotonic() >= self.at


def available(context: Any, *modules: str, extra: str) -> bool:
    """Whether ``modules`` (of ``memoryd[extra]``) are installed; if not, say so once at start.

    A built-in handler whose extra is missing registers nothing (its parts are
    kept, and contribute no text), so the default install starts without it.
    """
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        context.log.warning(
            "plugin %r: not reading these parts, because %s %s not installed: install "
            "memoryd[%s] (pip install 'memoryd[%s]'), or disable the plugin "
            "(plugins_disabled = [%r]) to silence this",
            context.plugin,
            ", ".join(repr(m) for m in missing),
            "is" if len(missing) == 1 else "are",
            extra,
            extra,
            context.plugin,
        )
    return not missing


def sniffed_mime(part: ContentPart) -> str | None:
    """The type the part declares, else the one its base64 starts like (a PDF, a PNG ...)."""
    mime = declared_mime(part)
    if mime and mime not in ("application/octet-stream", "binary/octet-stream"):
        return mime
    source = inline_source(part)
    if source is None:
        return None
    head = source.split(",", 1)[1][:16] if source[:5].lower() == "data:" else source[:16]
    return next((m for magic, m in _B64_MAGIC.items() if head.startswith(magic)), mime)


def extension(part: ContentPart) -> str:
    name = (part.filename or "").lower()
    return name.rsplit(".", 1)[-1] if "." in name else ""


@define
class FileHandler:
    """A part handler for the file types ``mimes`` and ``extensions`` name."""

    plugin: str
    extract: Callable[[Payload, Deadline], str | PartText | None]
    mimes: tuple[str, ...]
    extensions: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ("file",)
    max_bytes: int = 10 * 1024 * 1024
    #: Seconds the handler gives itself (a little under ``plugin_timeout``).
    seconds: float = 9.0
    log: logging.Logger = field(factory=lambda: logging.getLogger("memoryd.plugins"))

    def accepts(self, part: ContentPart) -> bool:
        if part.type not in self.kinds or inline_source(part) is None:
            return False
        mime = sniffed_mime(part) or ""
        if extension(part) in self.extensions and (not mime or mime in _GENERIC):
            return True
        return mime.startswith(self.mimes)

    def to_text(self, part: ContentPart) -> str | PartText | None:
        """The part's text; when it cannot be read, why (a warning too), never an exception."""
        try:
            payload = decode(part, max_bytes=self.max_bytes)
            return self.extract(payload, Deadline.after(self.seconds))
        except (PayloadError, Unreadable) as exc:
            return self._skip(part, str(exc))
        except Exception as exc:  # a corrupt file may fail anywhere in a parser
            # The client learns the kind; the log has the parser's words too.
            self._skip(part, f"it could not be read ({type(exc).__name__}: {str(exc)[:200]})")
            return PartText.skipped(f"it could not be read ({type(exc).__name__})")

    def _skip(self, part: ContentPart, reason: str) -> PartText:
        what = f"{part.type} part {part.filename!r}" if part.filename else f"{part.type} part"
        self.log.warning(
            "plugin %r: skipped the %s (%s): %s",
            self.plugin,
            what,
            sniffed_mime(part) or "no type",
            reason,
            extra={"plugin": self.plugin},
        )
        return PartText.skipped(reason)


#: Declared types that say nothing, so that the file name's extension decides.
_GENERIC = ("application/octet-stream", "binary/octet-stream", "application/zip")


def file_handler(
    context: Any,
    extract: Callable[[Payload, Deadline], str | PartText | None],
    *,
    mimes: tuple[str, ...],
    extensions: tuple[str, ...] = (),
    kinds: tuple[str, ...] = ("file",),
) -> FileHandler:
    """The plugin's handler, within ``part_max_bytes`` and a little under ``plugin_timeout``."""
    settings = context.settings
    return FileHandler(
        plugin=context.plugin,
        extract=extract,
        mimes=mimes,
        extensions=extensions,
        kinds=kinds,
        max_bytes=settings.part_max_bytes,
        seconds=max(0.1, settings.plugin_timeout * 0.9),
        log=context.log,
    )


def text_of(data: bytes) -> str:
    """Bytes as text: UTF-8 (with a BOM or not), else Latin-1, which never fails."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")
