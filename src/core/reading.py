"""Turning one content part into text, fetching its URL when the deployer allows: one entry point.

:meth:`PartReader.read` is what ingest (and any route that takes files) calls
for an image or file part. The first handler that accepts the part as sent
reads it. A part that none accepts and whose ``url`` is ``http(s)`` is
fetched through the :class:`UrlFetcher` (the fetch guard, only when
``fetch_urls`` is on), and then offered to the handlers again as inline
bytes (base64 ``data``): handlers only ever get bytes, and never fetch.
Whatever happens, the answer is text or None plus a :class:`PartOutcome`
saying what became of the part and why; nothing here raises for a part.
"""

from __future__ import annotations

import base64
import posixpath
import urllib.parse
from collections.abc import Sequence
from typing import Protocol

from attrs import evolve, field, frozen

from memoryd.core.contain import ContainedPartHandler
from memoryd.core.errors import MemorydError
from memoryd.core.model import ContentPart, StoredMessage
from memoryd.core.part_results import HandlerFailure, PartOutcome, PartStatus, PartText
from memoryd.core.parts import handler_for, part_label
from memoryd.core.payload import declared_mime, inline_source
from memoryd.core.ports import PartHandler

#: What a part whose URL is not fetched is told while ``fetch_urls`` is off.
FETCHING_OFF = (
    "it is a URL, and fetching URLs is off (setting fetch_urls): send the file inline "
    "(base64 or a data: URI), or ask the deployer to turn fetch_urls on"
)
_GENERIC_TYPES = ("", "application/octet-stream", "binary/octet-stream")


class FetchedBody(Protocol):
    """A fetched URL's decoded body (the fetch guard's ``Fetched``)."""

    @property
    def data(self) -> bytes: ...

    @property
    def content_type(self) -> str: ...

    @property
    def final_url(self) -> str: ...


class UrlFetcher(Protocol):
    """Fetches an http(s) URL safely; raises an error whose message says why it would not."""

    async def fetch(self, url: str) -> FetchedBody: ...


@frozen
class PartReading:
    """A part's text (None if it gave none) and what became of it."""

    text: str | None
    outcome: PartOutcome


def fetchable(part: ContentPart) -> bool:
    """Whether the part is only a URL that memoryd could fetch (``http://`` or ``https://``)."""
    url = (part.url or "").strip().lower()
    return inline_source(part) is None and url.startswith(("http://", "https://"))


@frozen
class PartReader:
    """The handlers (contained, in the order they are asked) and the fetcher, if fetching is on."""

    handlers: Sequence[PartHandler] = ()
    fetcher: UrlFetcher | None = field(default=None)

    async def read(self, part: ContentPart, *, message: int = 0, index: int = 0) -> PartReading:
        """The text of ``part`` (the ``index``-th part of message ``message``), and its outcome."""

        def outcome(
            status: PartStatus,
            *,
            plugin: str | None = None,
            reason: str | None = None,
            characters: int = 0,
        ) -> PartOutcome:
            return PartOutcome(
                message=message,
                part=index,
                type=part.type,
                filename=part.filename,
                status=status,
                plugin=plugin,
                reason=reason,
                characters=characters,
            )

        handler = handler_for(self.handlers, part)
        if handler is None and fetchable(part):
            if self.fetcher is None:
                return PartReading(None, outcome("refused", reason=FETCHING_OFF))
            fetched = await _fetch(self.fetcher, part, part.url or "")
            if isinstance(fetched, str):
                return PartReading(None, outcome("refused", reason=fetched))
            part = fetched
            handler = handler_for(self.handlers, part)
        if handler is None:
            return PartReading(None, outcome("unsupported", reason=_unsupported(part)))
        plugin = _plugin_of(handler)
        answer = await _ask(handler, part)
        if isinstance(answer, HandlerFailure):
            return PartReading(None, outcome("failed", plugin=plugin, reason=answer.reason))
        text = answer.text if answer.text and answer.text.strip() else None
        if text is None:
            why = answer.note or "its handler found no text in it"
            return PartReading(None, outcome("skipped", plugin=plugin, reason=why))
        found = outcome("read", plugin=plugin, reason=answer.note, characters=len(text))
        return PartReading(text, found)

    async def texts(
        self, messages: Sequence[StoredMessage], start: int, *, report_from: int | None = None
    ) -> tuple[dict[int, str], tuple[PartOutcome, ...]]:
        """Each message's part texts from ``start`` on, by position, and the parts' outcomes.

        Each text starts with its :func:`part_label` (``[part 1, file a.pdf]``), so
        a memory made of it says which part it came from. Outcomes are kept for
        messages from ``report_from`` (default ``start``) on.
        """
        first = start if report_from is None else report_from
        texts: dict[int, str] = {}
        outcomes: list[PartOutcome] = []
        for i in range(start, len(messages)):
            found: list[str] = []
            for index, part in enumerate(messages[i].message.content):
                if part.type == "text":
                    continue
                reading = await self.read(part, message=i, index=index)
                if i >= first:
                    outcomes.append(reading.outcome)
                if reading.text:
                    found.append(f"{part_label(index, part)} {reading.text.strip()}")
            if found:
                texts[i] = "\n".join(found)
        return texts, tuple(outcomes)


async def _fetch(fetcher: UrlFetcher, part: ContentPart, url: str) -> ContentPart | str:
    """The part with the URL's body inline, or why it was not fetched."""
    try:
        body = await fetcher.fetch(url.strip())
    except MemorydError as exc:
        return exc.message
    except Exception as exc:  # a fetcher's bug must not fail the request
        return f"the fetch failed ({type(exc).__name__})"
    declared = declared_mime(part) or ""
    served = body.content_type.split(";", 1)[0].strip().lower()
    mime = declared if declared not in _GENERIC_TYPES else (served or declared or None)
    return evolve(
        part,
        data=base64.b64encode(body.data).decode("ascii"),
        mime_type=mime or None,
        filename=part.filename or _file_name(body.final_url),
    )


async def _ask(handler: PartHandler, part: ContentPart) -> PartText | HandlerFailure:
    if isinstance(handler, ContainedPartHandler):
        return await handler.read(part)
    try:  # an uncontained handler (a unit test's)
        answer = await handler.to_text(part)
    except Exception as exc:
        return HandlerFailure(f"it raised {type(exc).__name__}")
    return answer if isinstance(answer, PartText) else PartText(answer)


def _plugin_of(handler: PartHandler) -> str:
    if isinstance(handler, ContainedPartHandler):
        return handler.plugin
    return type(handler).__name__


def _file_name(url: str) -> str | None:
    try:
        path = urllib.parse.urlsplit(url).path
    except ValueError:
        return None
    name = posixpath.basename(urllib.parse.unquote(path)).strip()
    return name[:200] or None


def _unsupported(part: ContentPart) -> str:
    mime = declared_mime(part)
    what = f"{part.type} parts of type {mime}" if mime else f"{part.type} parts like it"
    if inline_source(part) is None and not part.url:
        return "it holds no data"
    if inline_source(part) is None:
        return f"no installed part handler reads {what} from a URL that is not http(s)"
    return (
        f"no installed part handler reads {what} (the built-in ones for PDF, DOCX and HTML "
        "need memoryd[files], those for images memoryd[ocr])"
    )
