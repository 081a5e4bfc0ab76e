"""Files and images posted as parts of a conversation are found again by a phrase inside them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.parts import samples
from tests.integration.plugins.plugin_helpers import Serve, text


async def found(serve: Serve, part: dict[str, Any], phrase: str, **settings: Any) -> str:
    served = await serve(**settings)
    await served.remember("files", [text("Here is the file."), part])
    hits = await served.search(phrase, limit=3)
    memories = [h["memory"] for h in hits]
    assert any(phrase.lower() in m.lower() for m in memories), memories
    return next(m for m in memories if phrase.lower() in m.lower())


async def test_a_pdf_as_an_openai_file_part(serve: Serve) -> None:
    data = samples.pdf(["The lighthouse keeper feeds seventeen cats."])
    memory = await found(serve, samples.openai_file(data, "keeper.pdf"), "seventeen cats")
    assert "[part 1, file keeper.pdf]" in memory


async def test_a_docx_with_a_table_as_a_data_uri(serve: Serve) -> None:
    from memoryd.plugins.builtin.docx import DOCX_MIME

    data = samples.docx(
        "Minutes of the orchard committee.",
        [["fruit", "harvest"], ["quince", "late October"]],
    )
    part = samples.openai_file(data, "minutes.docx", as_uri=DOCX_MIME)
    memory = await found(serve, part, "quince")
    assert "fruit: quince; harvest: late October" in memory


async def test_an_html_page_without_its_boilerplate(serve: Serve) -> None:
    page = (
        b"<html><head><title>Blog</title><script>var tracking = 1;</script></head><body>"
        b"<nav><a href='/'>Home</a> <a href='/about'>About</a></nav>"
        b"<article><h1>Sourdough notes</h1><p>My sourdough starter is named Clint Yeastwood "
        b"and lives in the fridge between bakes. It doubles in six hours at room temperature, "
        b"and smells faintly of green apples when it is hungry.</p></article>"
        b"<footer>Copyright 2024 all rights reserved</footer></body></html>"
    )
    memory = await found(serve, samples.spec_file(page, "text/html"), "Clint Yeastwood")
    assert "tracking" not in memory


async def test_a_csv_as_header_value_rows(serve: Serve) -> None:
    data = b"name,instrument\nMarguerite,theremin\nOtis,bassoon\n"
    memory = await found(serve, samples.spec_file(data, "text/csv"), "theremin")
    assert "name: Marguerite; instrument: theremin" in memory


@pytest.mark.timeout(120)
async def test_a_png_goes_through_ocr(serve: Serve) -> None:
    data = samples.png_with_text("Purple giraffes dance at noon")
    part = {"type": "image_url", "imageUrl": {"url": samples.data_uri("image/png", data)}}
    # OCR takes about 1.3 s idle on 2 cores but several times that on a loaded machine:
    # the default 10 s plugin_timeout is not what this test is about.
    memory = await found(serve, part, "giraffes dance", plugin_timeout=90)
    assert "[part 1, image]" in memory


async def test_json_and_plain_text(serve: Serve) -> None:
    served = await serve()
    await served.remember(
        "texts",
        [
            samples.spec_file(
                b'{"trip": {"city": "Reykjavik", "month": "March"}}', "application/json"
            ),
            {
                "type": "file",
                "data": "The spare key is under the blue flowerpot.",
                "mimeType": "text/plain",
            },
        ],
    )
    (hit,) = await served.search("Reykjavik", limit=1)
    assert "trip.city: Reykjavik" in hit["memory"]
    (hit,) = await served.search("spare key flowerpot", limit=1)
    assert "[part 1, file] The spare key is under the blue flowerpot." in hit["memory"]


async def test_the_parts_come_back_with_the_conversation(serve: Serve) -> None:
    served = await serve()
    part = samples.openai_file(samples.pdf(["Hello"]), "hello.pdf")
    await served.remember("back", [text("A file"), part])
    response = await served.client.get(
        "/v4/conversations/back", headers={"Authorization": f"Bearer {served.key}"}
    )
    if response.status == 404:
        pytest.skip("no GET of a conversation")
    body = await response.json()
    parts = body["messages"][0]["content"]
    assert parts[1]["type"] == "file"
    assert parts[1]["filename"] == "hello.pdf"
