"""core.reading.PartReader: one part to text and an outcome, fetching only through its fetcher."""

from __future__ import annotations

import base64

from attrs import define, field, frozen

from memoryd.core.contain import ContainedPartHandler, Limits
from memoryd.core.errors import MemorydError
from memoryd.core.model import ContentPart
from memoryd.core.part_results import PartText
from memoryd.core.reading import FETCHING_OFF, PartReader


class Upper:
    """Reads inline text/plain parts, upper-cased; says why for empty ones."""

    def accepts(self, part: ContentPart) -> bool:
        return part.mime_type == "text/plain" and part.data is not None

    async def to_text(self, part: ContentPart) -> str | PartText | None:
        text = base64.b64decode(part.data or "").decode()
        return text.upper() if text else PartText.skipped("it is empty")


class Captions:
    """Reads the caption after '#' of an image URL itself, without fetching."""

    def accepts(self, part: ContentPart) -> bool:
        return "#" in (part.url or "")

    async def to_text(self, part: ContentPart) -> str | None:
        return (part.url or "").split("#", 1)[1]


class Raises:
    def accepts(self, part: ContentPart) -> bool:
        return True

    async def to_text(self, part: ContentPart) -> str | None:
        raise RuntimeError("secret words from the file")


@frozen
class Body:
    data: bytes
    content_type: str
    final_url: str


@define
class FakeFetcher:
    bodies: dict[str, Body]
    asked: list[str] = field(factory=list)

    async def fetch(self, url: str) -> Body:
        self.asked.append(url)
        if url not in self.bodies:
            raise MemorydError(f"{url} was not fetched: it is refused")
        return self.bodies[url]


def inline(text: str) -> ContentPart:
    return ContentPart(
        type="file", data=base64.b64encode(text.encode()).decode(), mime_type="text/plain"
    )


async def test_read_and_skipped_carry_the_plugin_and_the_reason() -> None:
    reader = PartReader([ContainedPartHandler(Upper(), "upper")])
    read = await reader.read(inline("seventeen cats"), message=2, index=1)
    assert read.text == "SEVENTEEN CATS"
    assert (read.outcome.message, read.outcome.part, read.outcome.status) == (2, 1, "read")
    assert (read.outcome.plugin, read.outcome.characters) == ("upper", 14)
    skipped = await reader.read(inline(""))
    assert (skipped.text, skipped.outcome.status) == (None, "skipped")
    assert skipped.outcome.reason == "it is empty"


async def test_a_failing_handler_is_failed_and_its_message_is_not_shown() -> None:
    reader = PartReader([ContainedPartHandler(Raises(), "raises", Limits(timeout=5))])
    reading = await reader.read(inline("x"))
    assert reading.outcome.status == "failed"
    assert reading.outcome.reason == "it raised RuntimeError (the server's log has more)"
    assert "secret" not in str(reading.outcome)


async def test_with_no_fetcher_a_url_is_refused_naming_the_setting() -> None:
    reading = await PartReader([Upper()]).read(ContentPart.image("https://x.test/a.txt"))
    assert (reading.text, reading.outcome.status, reading.outcome.reason) == (
        None,
        "refused",
        FETCHING_OFF,
    )


async def test_a_fetched_url_reaches_the_handlers_as_inline_bytes() -> None:
    fetcher = FakeFetcher(
        {
            "https://x.test/notes/a.txt": Body(
                b"herons", "text/plain; charset=utf-8", "https://x.test/notes/a.txt"
            )
        }
    )
    reader = PartReader([Upper()], fetcher)
    reading = await reader.read(ContentPart(type="file", url="https://x.test/notes/a.txt"))
    assert reading.text == "HERONS"
    assert (reading.outcome.status, reading.outcome.filename) == ("read", "a.txt")
    refused = await reader.read(ContentPart.image("https://x.test/inside"))
    assert refused.outcome.status == "refused"
    assert refused.outcome.reason == "https://x.test/inside was not fetched: it is refused"
    assert fetcher.asked == ["https://x.test/notes/a.txt", "https://x.test/inside"]


async def test_a_handler_that_reads_the_url_itself_is_asked_first_and_nothing_is_fetched() -> None:
    fetcher = FakeFetcher({})
    reading = await PartReader([Captions()], fetcher).read(
        ContentPart.image("https://x.test/c.png#a cat")
    )
    assert reading.text == "a cat"
    assert fetcher.asked == []


async def test_no_handler_is_unsupported_and_says_what_to_install() -> None:
    part = ContentPart(type="file", data="JVBERi0xLjQ=", mime_type="application/pdf")
    reading = await PartReader([Upper()]).read(part)
    assert reading.outcome.status == "unsupported"
    assert "application/pdf" in (reading.outcome.reason or "")
    assert "memoryd[files]" in (reading.outcome.reason or "")


async def test_text_over_plugin_max_chars_is_cut_and_said() -> None:
    reader = PartReader([ContainedPartHandler(Upper(), "upper", Limits(max_chars=4))])
    reading = await reader.read(inline("seventeen"))
    assert reading.text == "SEVE"
    assert reading.outcome.reason == (
        "its text was cut from 9 to 4 characters (setting plugin_max_chars)"
    )
