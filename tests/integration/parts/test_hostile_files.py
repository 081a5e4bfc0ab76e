"""Corrupt, truncated and hostile files give a bounded, clear result: skipped, said and logged.

The conversation is still stored (200), its text parts still become memories,
the part that cannot be read contributes nothing, the response's ``parts``
says which part, why and which limit, a warning names the plugin and the
reason, and ``/health`` answers all the while.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from tests.integration.parts import samples
from tests.integration.plugins.plugin_helpers import Serve, Served, text


def skipped(caplog: pytest.LogCaptureFixture, plugin: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == f"memoryd.plugins.{plugin}" and r.levelno >= logging.WARNING
    ]


async def remember_while_healthy(served: Served, part: dict[str, Any]) -> dict[str, Any]:
    """Post ``part``; /health must answer while it is read, and all within a generous bound.

    Returns what the response says of the part (its one entry in ``parts``).
    """
    started = time.monotonic()
    posting = asyncio.ensure_future(
        served.remember("hostile", [text("The quarterly badger census is attached."), part])
    )
    while not posting.done():
        response = await served.client.get("/health")
        assert response.status == 200
        await response.read()
        await asyncio.sleep(0.05)
    answer = await posting
    assert time.monotonic() - started < 60, "no hang"
    assert answer is not None
    (hit,) = await served.search("badger census", limit=1)
    assert "badger census" in hit["memory"]
    (outcome,) = answer["parts"]
    assert (outcome["message"], outcome["part"]) == (0, 1)
    assert outcome["type"] == part["type"]
    result: dict[str, Any] = outcome
    return result


async def test_a_corrupt_pdf(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    served = await serve()
    truncated = samples.pdf(["Forty-two owls"])[:120]
    outcome = await remember_while_healthy(served, samples.openai_file(truncated, "broken.pdf"))
    assert outcome["status"] == "skipped"
    assert outcome["plugin"] == "pdf"
    assert outcome["filename"] == "broken.pdf"
    assert "not a readable PDF" in outcome["reason"]
    (message,) = skipped(caplog, "pdf")
    assert "'broken.pdf'" in message
    assert "not a readable PDF" in message
    assert not [h for h in await served.search("Forty-two owls") if "owls" in h["memory"]]


async def test_junk_that_says_it_is_a_pdf(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    served = await serve()
    outcome = await remember_while_healthy(
        served, samples.spec_file(b"\x00\xffnot a pdf" * 50, "application/pdf")
    )
    assert outcome["status"] == "skipped"
    assert outcome["reason"] == "it is not a PDF (no %PDF- header)"
    (message,) = skipped(caplog, "pdf")
    assert "no %PDF- header" in message


async def test_a_zip_bomb_docx(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    served = await serve()
    bomb = samples.zip_bomb(120)
    assert len(bomb) < 1024 * 1024
    outcome = await remember_while_healthy(served, samples.openai_file(bomb, "bomb.docx"))
    assert (outcome["status"], outcome["plugin"]) == ("skipped", "docx")
    assert "max_unpacked_bytes" in outcome["reason"]
    assert "[plugins.docx]" in outcome["reason"]
    (message,) = skipped(caplog, "docx")
    assert "max_unpacked_bytes" in message
    assert "[plugins.docx]" in message


async def test_a_50_page_pdf_is_read_up_to_max_pages(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    served = await serve()
    pages = [
        f"Page {i} mentions the word {'zeppelin' if i == 1 else 'walrus' + str(i)}"
        for i in range(1, 51)
    ]
    outcome = await remember_while_healthy(
        served, samples.openai_file(samples.pdf(pages), "long.pdf")
    )
    assert (outcome["status"], outcome["plugin"]) == ("read", "pdf")
    assert outcome["reason"] == "read 20 of 50 pages (max_pages = 20, setting [plugins.pdf])"
    assert outcome["characters"] > 0
    (message,) = skipped(caplog, "pdf")
    assert "read 20 of 50 pages of 'long.pdf' (max_pages = 20" in message
    hits = [h["memory"] for h in await served.search("zeppelin", limit=5)]
    assert any("zeppelin" in m for m in hits)
    assert not any("walrus50" in m for m in hits)


@pytest.mark.parametrize(
    ("side", "reason"),
    [
        (12_000, "12000x12000 pixels, over max_pixels = 50000000"),
        (60_000, "could be decompression bomb"),  # over Pillow's own limit too
    ],
)
async def test_a_huge_image_is_refused_from_its_header(
    serve: Serve, caplog: pytest.LogCaptureFixture, side: int, reason: str
) -> None:
    served = await serve()
    huge = samples.png_header_only(side, side)
    assert len(huge) < 1000
    part = {"type": "image_url", "imageUrl": {"url": samples.data_uri("image/png", huge)}}
    outcome = await remember_while_healthy(served, part)
    assert (outcome["status"], outcome["plugin"]) == ("skipped", "image-ocr")
    assert reason in outcome["reason"]
    (message,) = skipped(caplog, "image-ocr")
    assert reason in message


async def test_a_part_over_part_max_bytes(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    served = await serve(part_max_bytes=1000)
    outcome = await remember_while_healthy(
        served, samples.spec_file(b"a,b\n" + b"1,2\n" * 1000, "text/csv")
    )
    assert (outcome["status"], outcome["plugin"]) == ("skipped", "csv")
    assert "over the limit of 1000 (setting part_max_bytes)" in outcome["reason"]
    (message,) = skipped(caplog, "csv")
    assert "over the limit of 1000 (setting part_max_bytes)" in message


async def test_a_file_part_without_data_is_a_400_naming_the_field(serve: Serve) -> None:
    served = await serve()
    response = await served.client.post(
        "/v4/conversations",
        json={
            "conversationId": "c",
            "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}],
        },
        headers={"Authorization": f"Bearer {served.key}"},
    )
    assert response.status == 400
    body = await response.text()
    assert "file_id is not supported" in body
    assert "content[0].file" in body
