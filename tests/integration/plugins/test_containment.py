"""A part handler or reranker that raises, hangs or answers too much does not fail the request."""

from __future__ import annotations

import logging
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import auth
from tests.integration.plugins.plugin_helpers import Serve, configured, image, text

SHOP = [text("Look what I bought."), image("https://img.test/red-bicycle.png")]


def plugin_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "memoryd.plugins" and r.levelno >= logging.WARNING
    ]


@pytest.mark.parametrize("fault", ["raise", "hang"])
async def test_a_failing_part_handler_is_skipped_and_logged_once(
    serve: Serve, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    served = await serve(plugin_timeout=0.2, **configured(captions=True, fault=fault))
    started = time.monotonic()
    await served.remember("shop", SHOP)
    await served.remember("shop2", SHOP)  # fails again: not logged again
    assert time.monotonic() - started < 5
    (hit,) = await served.search("Look what I bought", limit=1)
    assert "bicycle" not in hit["memory"]  # stored, without the caption
    (record,) = plugin_warnings(caplog)
    assert "'testplugin'" in record.getMessage()
    assert "part handler FileNameCaptions" in record.getMessage()
    expected = "took longer than 0.2 s" if fault == "hang" else "raised RuntimeError"
    assert expected in record.getMessage()

    # The chat's attachments go through the same handlers, contained the same way.
    response = await served.client.post(
        "/api/chat",
        json={
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What?"},
                        {"type": "image", "image": "https://x/a.png"},
                    ],
                }
            ]
        },
        headers=auth(served.key),
    )
    assert response.status == 200
    await response.read()
    assert len(plugin_warnings(caplog)) == 1


async def test_a_part_handler_text_is_capped(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    served = await serve(plugin_max_chars=60, **configured(captions=True, fault="flood"))
    await served.remember("shop", SHOP)
    (hit,) = await served.search("picture of a red bicycle", limit=1)
    assert "A picture of a red bicycle." in hit["memory"]
    assert hit["memory"].count("bicycle") == 2  # 60 characters: two captions and a bit
    (record,) = plugin_warnings(caplog)
    assert "kept the first 60" in record.getMessage()


@pytest.mark.parametrize("fault", ["raise", "hang", "flood"])
async def test_a_failing_reranker_is_skipped_and_logged_once(
    serve: Serve, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    served = await serve(
        plugin_timeout=0.2, rerankers=("reverse",), **configured(reverse=True, fault=fault)
    )
    for i, fact in enumerate(["Bees live on the roof.", "Bees make honey.", "Bees sting."]):
        await served.remember(f"c{i}", fact)
    results = await served.search("bees", limit=3, rerank=True)
    again = await served.search("do bees sting", limit=3, rerank=True)
    assert len(results) == 3
    assert len(again) == 3
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)  # the fused order, not reversed
    (record,) = plugin_warnings(caplog)
    message = record.getMessage()
    assert "'testplugin'" in message
    assert "reranker 'reverse'" in message
    assert {
        "raise": "raised RuntimeError",
        "hang": "took longer than 0.2 s",
        "flood": "not a reordering",
    }[fault] in message


async def test_plugin_failures_are_counted_in_the_metrics(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    served = await serve(plugin_timeout=0.2, **configured(captions=True, fault="raise"))
    await served.remember("shop", SHOP)
    await served.remember("shop2", SHOP)  # logged at debug the second time: counted too
    response = await served.client.get("/metrics")
    assert response.status == 200
    found = {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(await response.text())
        for s in family.samples
        if s.name == "memoryd_plugin_failures_total"
    }
    assert found == {(("plugin", "testplugin"),): 2.0}
    assert len(plugin_warnings(caplog)) == 1  # the logs read as before
    assert not [r for r in caplog.records if r.name == "memoryd.plugins" and r.levelno < 20]
