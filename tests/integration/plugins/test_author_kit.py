"""The plugin author's kit (``memoryd.testing``): plugin_host, sample parts, conformance checks.

The conformance checks run over every built-in part handler and reranker,
and each check is shown to catch what it is for (a handler that raises on
junk or blocks the loop, a reranker that drops or adds a result).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from types import ModuleType

import aiohttp
import attrs
import pytest
from aiohttp import web

from memoryd import hookimpl
from memoryd.core.errors import ConfigurationError
from memoryd.core.model import ContentPart
from memoryd.core.part_results import PartText
from memoryd.core.ports import RerankCandidate
from memoryd.plugins.builtin import (
    csv,
    docx,
    exif,
    html,
    http_rerank,
    image_ocr,
    llm_rerank,
    mmr,
    pdf,
    recency,
    text,
)
from memoryd.testing import (
    NotConforming,
    WordCounter,
    check_part_handler,
    check_reranker,
    plugin_host,
)
from memoryd.testing import samples as kit
from tests.helpers import serve_on_loopback

HANDLER_PLUGINS = [text, pdf, docx, html, csv, image_ocr, exif]


@pytest.mark.parametrize("module", HANDLER_PLUGINS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
async def test_every_builtin_part_handler_conforms(module: ModuleType) -> None:
    loaded = plugin_host(module)
    (handler,) = loaded.part_handlers(contained=False)
    answers = await check_part_handler(handler)
    assert answers  # it accepted some of the junk, and came through it
    binary = ("random bytes", "truncated", "pixel bomb", "zip bomb", "invalid base64")
    for name, answer in answers.items():
        if name.startswith(binary):  # broken JSON or CSV is still text; these are not
            assert answer is None or isinstance(answer, PartText), (name, answer)
            assert answer is None or answer.text is None, (name, answer)


async def test_the_sample_parts_through_the_text_handler() -> None:
    loaded = plugin_host(text)
    parts = kit.sample_parts()
    for shape in ("data URI", "bare base64"):
        reading = await loaded.read(parts[shape])
        assert (reading.text or "").strip() == kit.text_file().decode().strip(), shape
        assert (reading.outcome.status, reading.outcome.plugin) == ("read", "text")
    url = await loaded.read(parts["URL"])
    assert (url.text, url.outcome.status) == (None, "refused")
    assert "fetch_urls" in (url.outcome.reason or "")
    corrupt = await loaded.read(parts["corrupt"])
    assert (corrupt.text, corrupt.outcome.status) == (None, "unsupported")  # not text's kind
    broken = await plugin_host(pdf).read(parts["corrupt"])
    assert (broken.outcome.status, broken.outcome.plugin) == ("skipped", "pdf")
    assert "not a readable PDF" in (broken.outcome.reason or "")


# --- the checks catch what they are for --------------------------------------------------------


class RaisesOnJunk:
    def accepts(self, part: ContentPart) -> bool:
        return part.type == "file"

    async def to_text(self, part: ContentPart) -> str | None:
        raise ValueError("cannot parse this")


class BlocksTheLoop:
    def accepts(self, part: ContentPart) -> bool:
        return part.filename == "a.pdf"

    async def to_text(self, part: ContentPart) -> str | None:
        time.sleep(0.8)  # noqa: ASYNC251  # blocking work in an async def: every request waits
        return None


class SleepsInAThread:
    """The same work as BlocksTheLoop, in a plain def: memoryd runs it in a worker thread."""

    def accepts(self, part: ContentPart) -> bool:
        return part.filename == "a.pdf"

    def to_text(self, part: ContentPart) -> str | None:
        time.sleep(0.8)
        return None


async def test_check_part_handler_catches_raising_and_blocking() -> None:
    with pytest.raises(NotConforming, match=r"invalid base64: to_text\(\) raised ValueError"):
        await check_part_handler(RaisesOnJunk())
    with pytest.raises(NotConforming, match=r"held the event loop 0\.\d+ s"):
        await check_part_handler(BlocksTheLoop())
    assert await check_part_handler(SleepsInAThread())


@attrs.frozen
class DropsTheLast:
    name: str = "drops"

    async def rerank(self, query: str, pool: Sequence[RerankCandidate]) -> list[RerankCandidate]:
        return list(pool)[:-1]


@attrs.frozen
class SortsInPlace:
    name: str = "in-place"

    def rerank(self, query: str, pool: list[RerankCandidate]) -> list[RerankCandidate]:
        pool.sort(key=lambda c: c.memory.said_at, reverse=True)
        return pool


async def test_check_reranker_catches_dropping_and_changing_the_pool() -> None:
    with pytest.raises(NotConforming, match="not a reordering"):
        await check_reranker(DropsTheLast())
    with pytest.raises(NotConforming, match="changed the pool it was given"):
        await check_reranker(SortsInPlace())


# --- plugin_host ---------------------------------------------------------------------------------


class Misspelt:
    @hookimpl
    def memoryd_register_rerankrs(self) -> list[object]:
        return []


def test_plugin_host_runs_check_pending() -> None:
    with pytest.raises(ConfigurationError, match=r"did you mean memoryd_register_rerankers\?"):
        plugin_host(Misspelt())


def test_plugin_host_validates_the_plugins_settings() -> None:
    loaded = plugin_host(pdf, config={"max_pages": 3})
    assert loaded.context().config.max_pages == 3
    with pytest.raises(ConfigurationError, match=r"plugins\.pdf"):
        plugin_host(pdf, config={"max_pagez": 3})
    info = loaded.info()
    assert info.hooks == ("memoryd_plugin_settings", "memoryd_register_part_handlers")


# --- every built-in reranker conforms ------------------------------------------------------------


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
async def hostile_servers() -> AsyncIterator[str]:
    """A /v1/rerank and a /v1/chat/completions on 127.0.0.1 whose answers fit the pool badly."""

    async def rerank(request: web.Request) -> web.Response:
        body = await request.json()
        n = len(body.get("documents") or body.get("texts") or [])
        # Repeats the first two documents, leaves out the rest, scores them oddly.
        results = [{"index": i % 2, "relevance_score": 1.0 / (i + 1)} for i in range(n + 2)]
        return web.json_response({"results": results[: max(1, n)]})

    async def chat(request: web.Request) -> web.Response:
        scores = [10, 10, 3, 99, -4, 7, 1, 1, 1]  # too many, out of range
        content = json.dumps({"scores": scores})
        return web.json_response({"choices": [{"message": {"content": content}}]})

    app = web.Application()
    app.router.add_post("/v1/rerank", rerank)
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    base = await serve_on_loopback(runner)
    assert base.startswith("http://127.0.0.1:")
    yield base
    await runner.cleanup()


async def test_every_builtin_reranker_only_reorders(
    session: aiohttp.ClientSession, hostile_servers: str
) -> None:
    configs = {
        mmr: None,
        recency: None,
        http_rerank: {"url": f"{hostile_servers}/v1/rerank"},
        llm_rerank: {"url": f"{hostile_servers}/v1", "model": "m"},
    }
    for module, config in configs.items():
        loaded = plugin_host(module, config=config, session=session, tokens=WordCounter())
        (reranker,) = loaded.rerankers(contained=False)
        answers = await check_reranker(reranker)
        assert answers["the pool"], module.__name__


async def test_mmr_conformance_answer_demotes_the_near_duplicate() -> None:
    (reranker,) = plugin_host(mmr).rerankers(contained=False)
    answers = await check_reranker(reranker)
    order = [c.memory.id for c in answers["the pool"]]
    assert order[0] == "m0"
    assert order[1] != "m1"  # m1 is m0's near-duplicate


# --- docs/plugins.md ----------------------------------------------------------------------------


def test_the_docs_examples_from_the_examples_are_in_them_word_for_word() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    doc = (root / "docs" / "plugins.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n# from (examples/\S+)\n(.*?)^```", doc, re.M | re.S)
    assert blocks  # the kit's section quotes the template's tests (which the suite runs)
    for source, body in blocks:
        assert body in (root / source).read_text(encoding="utf-8"), source
