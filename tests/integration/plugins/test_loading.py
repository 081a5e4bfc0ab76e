"""Loading plugins: hooks checked at start, settings validated, startup and shutdown run."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import memoryd_testplugin
import pytest
from aiohttp.test_utils import TestClient, TestServer

from memoryd import __version__, bootstrap, hookimpl
from memoryd.adapters.http._keys import SERVICES
from memoryd.core.errors import ConfigurationError
from memoryd.plugins import PluginContext, RegisterStorage
from memoryd.settings import load_settings
from tests.helpers import auth, make_settings
from tests.integration.chat.chat_helpers import answer_text
from tests.integration.plugins.plugin_helpers import Serve, configured, make_key


class Misspelt:
    """A plugin with a typo in a hook's name."""

    @hookimpl
    def memoryd_register_rerankrs(self) -> list[Any]:
        return []


class Unmarked:
    """A plugin that forgot the marker."""

    def memoryd_register_rerankers(self) -> list[Any]:
        return []


class AsyncHook:
    @hookimpl
    async def memoryd_register_rerankers(self) -> list[Any]:
        return []


class SecondSqlite:
    @hookimpl
    def memoryd_register_storage(self, register: RegisterStorage) -> None:
        register("sqlite", memoryd_testplugin.open_memory)


class AnotherReverse:
    """A reranker named like the test plugin's."""

    @property
    def name(self) -> str:
        return "reverse"

    async def rerank(self, query: str, pool: Sequence[Any]) -> list[Any]:
        return list(pool)


class SecondReverse:
    @hookimpl
    def memoryd_register_rerankers(self) -> list[Any]:
        return [AnotherReverse()]


async def test_a_misspelt_hook_fails_the_start_naming_the_plugin(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await bootstrap.create_app(make_settings(tmp_path), plugins=[Misspelt()])
    message = caught.value.message
    assert message.startswith("Plugin 'Misspelt' implements unknown hook(s): ")
    assert "memoryd_register_rerankrs (did you mean memoryd_register_rerankers?)" in message
    assert caught.value.details == {"plugin": "Misspelt", "unknown": ["memoryd_register_rerankrs"]}


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        (Unmarked(), "Plugin 'Unmarked': memoryd_register_rerankers is not marked"),
        (AsyncHook(), "Plugin 'AsyncHook': memoryd_register_rerankers is async"),
        (SecondSqlite(), "Two storage backends are named 'sqlite', registered by plugins "),
    ],
)
async def test_a_broken_plugin_fails_the_start_naming_it(
    tmp_path: Path, plugin: object, expected: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await bootstrap.create_app(make_settings(tmp_path), plugins=[plugin])
    assert caught.value.message.startswith(expected), caught.value.message


async def test_two_rerankers_of_one_name_fail_the_start_naming_both_plugins(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, **configured(reverse=True))
    with pytest.raises(ConfigurationError) as caught:
        await bootstrap.create_app(settings, plugins=[SecondReverse()])
    assert caught.value.message.startswith(
        "Two rerankers are named 'reverse', registered by plugins 'SecondReverse' and "
        "'testplugin': disable one of them (plugins_disabled)"
    ), caught.value.message
    # Disabled by name, the test plugin's is gone, and so is the clash.
    off = make_settings(tmp_path, plugins_disabled=("testplugin",), rerankers=("reverse",))
    app = await bootstrap.create_app(off, plugins=[SecondReverse()])
    async with TestClient(TestServer(app)):
        assert [r.name for r in app[SERVICES].search.rerankers] == ["reverse"]


async def test_the_plugin_section_comes_from_toml_and_the_environment(tmp_path: Path) -> None:
    toml = tmp_path / "memoryd.toml"
    toml.write_text(
        '[plugins]\ndisabled = ["e5"]\n\n[plugins.testplugin]\ngreeting = "From the file."\n'
        'token = "in-the-file"\n',
        encoding="utf-8",
    )
    from_file = load_settings(config_file=toml, env={})
    assert from_file.plugins_disabled == ("e5",)  # [plugins]' own keys are core settings
    host = bootstrap.plugin_host(from_file)
    config = host.context("testplugin").config
    assert (config.greeting, config.token) == ("From the file.", "in-the-file")
    assert host.configs()["testplugin"]["token"] == "***"
    assert "in-the-file" not in repr(config)

    env = {"MEMORYD_PLUGIN_TESTPLUGIN__GREETING": "From the environment.", "MEMORYD_LLM": "canned"}
    settings = load_settings(config_file=toml, env=env, flags={"data_dir": tmp_path / "d"})
    async with TestClient(TestServer(await bootstrap.create_app(settings))) as client:
        key = await make_key(settings)
        response = await client.post(
            "/api/chat", json={"messages": [{"role": "user", "content": "Hi"}]}, headers=auth(key)
        )
        assert answer_text(await response.read()).strip() == "From the environment."


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"captions": "maybe"}, "@ plugins.testplugin.captions"),
        ({"fault": "explode"}, "@ plugins.testplugin.fault"),
        ({"caption": True}, "extra fields found (caption) @ plugins.testplugin"),
    ],
)
def test_invalid_plugin_settings_fail_at_start_with_their_path(
    tmp_path: Path, section: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        bootstrap.plugin_host(make_settings(tmp_path, **configured(**section)))
    assert caught.value.message.startswith("Invalid settings of plugin 'testplugin': ")
    assert expected in caught.value.message


def test_settings_for_a_plugin_that_is_not_installed_are_an_error(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, plugin_settings={"tesplugin": {"captions": True}})
    with pytest.raises(ConfigurationError) as caught:
        bootstrap.plugin_host(settings)
    assert "settings for plugin 'tesplugin'" in caught.value.message
    assert "testplugin" in caught.value.message  # the installed ones are listed
    # ...but not for a disabled one: its settings stay, unused.
    disabled = make_settings(
        tmp_path, plugins_disabled=("testplugin",), **configured(captions="not checked")
    )
    assert "testplugin" not in bootstrap.plugin_host(disabled).names


async def test_lifespan_runs_at_start_and_at_close(serve: Serve) -> None:
    before = len(memoryd_testplugin.EVENTS)
    served = await serve(embedder="hashing")
    assert memoryd_testplugin.EVENTS[before:] == [("start", "testplugin-hashing")]
    await served.close()
    assert memoryd_testplugin.EVENTS[before:] == [
        ("start", "testplugin-hashing"),
        ("stop", "testplugin-hashing"),
    ]


class FailsToStart:
    @hookimpl
    def memoryd_lifespan(self, context: PluginContext[None]) -> Any:
        @contextlib.asynccontextmanager
        async def lifespan() -> AsyncIterator[None]:
            raise OSError("no such device")
            yield

        return lifespan()


async def test_startup_code_that_fails_stops_the_start_naming_the_plugin(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await bootstrap.create_app(make_settings(tmp_path), plugins=[FailsToStart()])
    assert caught.value.message == "Plugin 'FailsToStart' failed to start: OSError: no such device"


def test_the_host_describes_each_plugin() -> None:
    infos = {i.name: i for i in bootstrap.plugin_host(make_settings(Path("unused"))).describe()}
    test = infos["testplugin"]
    assert (test.version, test.source) == ("1.2.3", "memoryd-testplugin 1.2.3")
    assert test.registers == {
        "storage": ["memory"],
        "embedders": ["hashing"],
        "chat_models": ["canned"],
    }
    assert "memoryd_lifespan" in test.hooks
    assert (infos["sqlite"].version, infos["sqlite"].source) == (__version__, "built in")
    assert set(infos) >= {
        "text",
        "pdf",
        "image-ocr",
        "sqlite",
        "minilm",
        "e5",
        "openai",
        "llamacpp",
        "extractive",
    }
