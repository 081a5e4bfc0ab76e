"""Credentials in ``llm_url`` / ``embedding_url``: never shown, and never beside an API key.

aiohttp cannot send a URL's ``user:password@`` and an ``Authorization: Bearer`` header
together, so with both every chat failed with "An unexpected error occurred"; the
server now refuses to start and names both settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memoryd import bootstrap
from memoryd.adapters.llm import OpenAIChatModel
from memoryd.core.errors import ConfigurationError, ModelUnavailable
from memoryd.core.ports import ChatTurn
from memoryd.settings import Settings
from tests.integration.llm.conftest import free_port

PASSWORD = "pa%40ss-do-not-leak"  # percent-encoded in the URL: "pa@ss-do-not-leak" decoded


@pytest.mark.parametrize(
    ("url_setting", "key_setting", "extra"),
    [
        ("llm_url", "llm_api_key", {"llm": "openai"}),
        ("embedding_url", "embedding_api_key", {"embedder": "openai"}),
    ],
)
async def test_credentials_in_the_url_beside_a_key_refuse_to_start(
    tmp_path: Path, url_setting: str, key_setting: str, extra: dict[str, str]
) -> None:
    values: dict[str, Any] = {
        **extra,
        url_setting: f"http://bob:{PASSWORD}@127.0.0.1:9/v1",
        key_setting: "sk-x",
    }
    settings = Settings(data_dir=tmp_path / "data", **values)
    with pytest.raises(ConfigurationError) as raised:
        await bootstrap.create_app(settings)
    message = raised.value.message
    assert url_setting in message
    assert key_setting in message
    assert raised.value.details == {"settings": [url_setting, key_setting]}
    for secret in ("bob", PASSWORD, "pa@ss", "sk-x"):
        assert secret not in message
    assert not (tmp_path / "data").exists()  # refused before anything was opened


async def test_an_unreachable_server_is_named_without_its_credentials() -> None:
    url = f"http://bob:{PASSWORD}@127.0.0.1:{free_port()}/v1"
    model = OpenAIChatModel(base_url=url, model="m", connect_retries=0, connect_timeout=2.0)
    try:
        with pytest.raises(ModelUnavailable) as raised:
            async for _ in model.stream([ChatTurn("user", "hi")], max_tokens=4):
                pass  # pragma: no cover
    finally:
        await model.aclose()
    shown = f"{raised.value.message} {raised.value.details} {model!r}"
    assert "127.0.0.1" in shown
    for secret in ("bob", PASSWORD, "pa@ss"):
        assert secret not in shown
