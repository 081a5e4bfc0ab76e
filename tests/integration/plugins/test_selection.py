"""Each kind the test plugin registers, chosen by name, changes what the HTTP API does."""

from __future__ import annotations

from pathlib import Path

import pytest

from memoryd import bootstrap
from memoryd.adapters.http._keys import SERVICES
from memoryd.core.errors import ConfigurationError
from tests.helpers import auth, make_settings
from tests.integration.chat.chat_helpers import answer_text
from tests.integration.plugins.plugin_helpers import Serve, configured, image, text


async def test_storage_memory_keeps_conversations_out_of_the_sqlite_file(serve: Serve) -> None:
    memory = await serve(storage="memory")
    await memory.remember("trip", "We fly to Lisbon in May.")
    got = await memory.client.get("/v4/conversations/trip", headers=auth(memory.key))
    assert got.status == 200
    assert not memory.settings.database_path.exists()  # neither the app nor its keys made one
    await memory.close()

    sqlite = await serve()  # the same data_dir, the default backend
    missing = await sqlite.client.get("/v4/conversations/trip", headers=auth(sqlite.key))
    assert missing.status == 404
    await sqlite.remember("other", "Our cat is called Miso.")
    await sqlite.close()

    again = await serve(storage="memory")  # the plugin's store lives on with the process
    assert [r["conversationId"] for r in await again.search("Lisbon in May")] == ["trip"]
    assert await again.search("cat called Miso", threshold=0.5) == []


async def test_embedder_hashing_scores_by_shared_words(serve: Serve) -> None:
    hashing = await serve("hashing", embedder="hashing")
    await hashing.remember("bike", "My bike is red")
    # The memory is embedded as "user: My bike is red" (speaker, then text): the same
    # words in any order score 1, and a synonym shares no word with them.
    (same,) = await hashing.search("red is bike my user")
    assert same["similarity"] == pytest.approx(1.0, abs=1e-5)
    assert await hashing.search("bicycle", threshold=0.1) == []

    minilm = await serve("minilm")
    await minilm.remember("bike", "My bike is red")
    (found,) = await minilm.search("bicycle", threshold=0.1)  # MiniLM knows the synonym
    assert found["conversationId"] == "bike"
    assert found["similarity"] < 0.99


async def test_chat_model_canned_answers_its_greeting(serve: Serve) -> None:
    canned = await serve(llm="canned", **configured(greeting="Ahoy from the canned model."))
    await canned.remember("trip", "We fly to Lisbon in May.")
    response = await canned.client.post(
        "/api/chat",
        json={"messages": [{"role": "user", "content": "Where do we fly?"}]},
        headers=auth(canned.key),
    )
    assert response.status == 200
    assert answer_text(await response.read()).strip() == "Ahoy from the canned model."
    chat = canned.app[SERVICES].chat
    assert chat is not None
    # The headroom is the one the model registered, not a guess from its class.
    assert chat.policy.token_headroom == pytest.approx(0.1)

    extractive = await serve("other")
    response = await extractive.client.post(
        "/api/chat",
        json={"messages": [{"role": "user", "content": "Where do we fly?"}]},
        headers=auth(extractive.key),
    )
    assert "Ahoy" not in answer_text(await response.read())


async def test_part_handler_captions_images_at_ingest(serve: Serve) -> None:
    message = [text("Look what I bought."), image("https://img.test/red-bicycle.png")]
    captions = await serve("captions", **configured(captions=True))
    await captions.remember("shop", message)
    (hit,) = await captions.search("picture of a red bicycle")
    assert "A picture of a red bicycle." in hit["memory"]

    plain = await serve("plain")
    await plain.remember("shop", message)
    assert all("bicycle" not in r["memory"] for r in await plain.search("red bicycle"))


async def test_reranker_reverse_reverses_the_results(serve: Serve) -> None:
    facts = ["Bees live on the roof.", "Bees make honey in summer.", "Bees sting when scared."]
    plain = await serve()
    for i, fact in enumerate(facts):
        await plain.remember(f"c{i}", fact)
    order = [r["id"] for r in await plain.search("bees", limit=3)]
    assert len(order) == 3
    await plain.close()

    # The same data; the reranker runs when the settings name it and the request asks.
    reverse = await serve(rerankers=("reverse",), **configured(reverse=True))
    assert [r["id"] for r in await reverse.search("bees", limit=3, rerank=True)] == order[::-1]
    assert [r["id"] for r in await reverse.search("bees", limit=3)] == order
    assert [r["id"] for r in await reverse.search("bees", limit=1, rerank=True)] == order[-1:]
    await reverse.close()

    unnamed = await serve(**configured(reverse=True))  # installed, but not named
    assert [r["id"] for r in await unnamed.search("bees", limit=3, rerank=True)] == order
    wrong = await unnamed.client.post(
        "/v4/search", json={"q": "bees", "rerank": "yes"}, headers=auth(unnamed.key)
    )
    assert wrong.status == 400
    assert (await wrong.json())["details"][0]["path"] == "rerank"


async def test_a_reranker_name_that_is_not_installed_fails_at_start(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", rerankers=("reverse", "cross-encoder"))
    with pytest.raises(ConfigurationError) as caught:
        await bootstrap.create_app(settings)
    message = caught.value.message
    assert "'reverse'" in message  # the test plugin's reranker is off: only built-ins are
    assert "Installed rerankers: http-rerank, llm-rerank, mmr, recency" in message
    assert caught.value.details == {
        "setting": "rerankers",
        "installed": ["http-rerank", "llm-rerank", "mmr", "recency"],
    }


@pytest.mark.parametrize(
    ("setting", "value", "builtin"),
    [("storage", "memory", "sqlite"), ("embedder", "hashing", "minilm"), ("llm", "canned", "")],
)
async def test_disabling_the_plugin_removes_what_it_registered(
    serve: Serve, tmp_path: Path, setting: str, value: str, builtin: str
) -> None:
    settings = make_settings(
        tmp_path / "data",
        plugins_disabled=("testplugin",),
        **{setting: value},
    )
    with pytest.raises(ConfigurationError) as caught:
        await bootstrap.create_app(settings)
    message = caught.value.message
    assert f"{setting} = {value!r}" in message
    assert "Installed: " in message
    assert builtin in message
    assert "disabled plugins: testplugin" in message
    assert caught.value.details["setting"] == setting


async def test_disabling_the_plugin_removes_its_handler_and_reranker(serve: Serve) -> None:
    off = await serve(plugins_disabled=("testplugin",), **configured(captions=True, reverse=True))
    assert off.app[SERVICES].search.rerankers == []
    await off.remember("shop", [text("Look."), image("https://img.test/red-bicycle.png")])
    assert all("bicycle" not in r["memory"] for r in await off.search("red bicycle"))


async def test_plugins_allowed_leaves_out_the_installed_plugins_it_does_not_name(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "data", plugins_allowed=("another",))
    host = bootstrap.plugin_host(settings)
    assert "testplugin" not in host.names
    assert "sqlite" in host.names  # built-ins are not subject to the allowlist
    allowed = bootstrap.plugin_host(
        make_settings(tmp_path / "data", plugins_allowed=("testplugin",))
    )
    assert "testplugin" in allowed.names
