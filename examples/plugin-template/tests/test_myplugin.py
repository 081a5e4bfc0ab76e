"""The plugin's tests, with the kit memoryd ships for plugin authors (memoryd.testing)."""

from __future__ import annotations

from memoryd.testing import check_part_handler, check_reranker, plugin_host, samples

import memoryd_myplugin


async def test_a_file_part_becomes_text() -> None:
    loaded = plugin_host(memoryd_myplugin)
    part = samples.base64_part(b"Seventeen cats.", None, filename="notes.myformat")
    reading = await loaded.read(part)
    assert reading.text == "Seventeen cats."
    assert (reading.outcome.status, reading.outcome.plugin) == ("read", "myplugin")


async def test_its_settings_apply() -> None:
    loaded = plugin_host(memoryd_myplugin, config={"max_chars": 5})
    part = samples.data_uri_part(b"Seventeen cats.", "text/plain", filename="a.myformat")
    reading = await loaded.read(part)
    assert reading.text == "Seven"
    assert "max_chars" in (reading.outcome.reason or "")


async def test_the_handler_conforms() -> None:
    (handler,) = plugin_host(memoryd_myplugin).part_handlers(contained=False)
    junk = {"empty": samples.base64_part(b"", None, filename="empty.myformat")}
    await check_part_handler(handler, junk)


async def test_the_reranker_only_reorders() -> None:
    (reranker,) = plugin_host(memoryd_myplugin).rerankers(contained=False)
    await check_reranker(reranker)


def test_it_loads_as_memoryd_loads_it() -> None:
    info = plugin_host(memoryd_myplugin).info()
    assert info.hooks == (
        "memoryd_plugin_settings",
        "memoryd_register_part_handlers",
        "memoryd_register_rerankers",
    )
