"""Filters over HTTP: the built-in ``redact`` and filters that plugins register."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import attrs
import pytest

from memoryd import hookimpl
from memoryd.core.model import Memory, MemoryDraft
from tests.integration.plugins.plugin_helpers import Serve

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
KEY = "sk-proj-Zq8Xr2Lm5Nv7Tb1Yc4Wd"
SECRETS = f"Write to {EMAIL}, pay with card {CARD}, and the API key is {KEY}."
REDACT_ON = {"plugin_settings": {"redact": {"enabled": True}}}


async def test_redact_masks_drafts_before_they_are_embedded(serve: Serve) -> None:
    served = await serve(**REDACT_ON)
    await served.remember("billing", SECRETS, "Thanks, I will pay the invoice tomorrow.")
    for query in (EMAIL, CARD, KEY, "card and API key"):
        results = await served.search(query, limit=5)
        for r in results:
            assert EMAIL not in r["memory"]
            assert CARD not in r["memory"]
            assert KEY not in r["memory"]
    found = await served.search("card and API key", limit=1)
    assert "[email]" in found[0]["memory"]
    assert "[card]" in found[0]["memory"]
    assert "[secret]" in found[0]["memory"]


async def test_redact_is_off_by_default(serve: Serve) -> None:
    served = await serve()
    await served.remember("billing", SECRETS)
    assert SECRETS in (await served.search("card and API key", limit=1))[0]["memory"]


async def test_redact_masks_results_stored_before_it_was_on(serve: Serve) -> None:
    before = await serve()
    await before.remember("billing", SECRETS)
    await before.close()
    after = await serve(**REDACT_ON)  # the same data directory
    memory = (await after.search("card and API key", limit=1))[0]["memory"]
    assert EMAIL not in memory
    assert "[email]" in memory


@attrs.frozen
class Confidential:
    """An ingest filter that rejects drafts marked confidential, and a result filter that
    hides one conversation."""

    name: str = "confidential"

    async def on_draft(self, draft: MemoryDraft) -> MemoryDraft | None:
        return None if "CONFIDENTIAL" in draft.text else draft

    async def on_result(self, memory: Memory) -> Memory | None:
        return None if memory.conversation_id == "hidden" else memory


class ConfidentialPlugin:
    @hookimpl
    def memoryd_register_filters(self) -> Sequence[object]:
        return [Confidential()]


async def test_a_plugins_filters_reject_drafts_and_drop_results(serve: Serve) -> None:
    served = await serve(plugins=[ConfidentialPlugin()])
    await served.remember("plans", "CONFIDENTIAL: we will buy the bakery.", "We like bread.")
    await served.remember("hidden", "The bakery opens at seven.")
    await served.remember("open", "The bakery sells rye bread.")
    found = [r["conversationId"] for r in await served.search("bakery", limit=5)]
    assert "hidden" not in found
    assert "open" in found
    memories = [r["memory"] for r in await served.search("buy the bakery", limit=5)]
    assert all("CONFIDENTIAL" not in m for m in memories)
    assert any("We like bread." in m for m in memories)  # its other message is kept
    assert len(await served.search("bakery", limit=1)) == 1  # a dropped result makes room


class Broken:
    name = "broken"

    def on_draft(self, draft: MemoryDraft) -> MemoryDraft:  # a plain function: off the loop
        raise RuntimeError("filter bug")


class BrokenPlugin:
    @hookimpl
    def memoryd_register_filters(self) -> Sequence[object]:
        return [Broken()]


async def test_a_failing_filter_keeps_the_draft_out_and_is_logged_once(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    served = await serve(plugins=[BrokenPlugin()])
    await served.remember("a", "Bees live on the roof.")  # stored, but no memory of it
    await served.remember("b", "Bees make honey.")
    assert await served.search("bees", limit=5) == []
    warnings = [
        r
        for r in caplog.records
        if r.name == "memoryd.plugins"
        and r.levelno >= logging.WARNING
        and "broken" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "draft is left out" in warnings[0].getMessage()
