"""``memoryd config`` hides the credentials in URL settings; a URL with them beside a key fails."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e._server import memoryd_command, memoryd_env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        memoryd_command(*args), env=env, capture_output=True, text=True, check=False, timeout=120
    )


def test_config_hides_passwords_in_urls(tmp_path: Path) -> None:
    env = memoryd_env(
        tmp_path,
        MEMORYD_LLM_URL="http://alice:PASS-llm-123@models.internal:8080/v1",
        MEMORYD_EMBEDDING_URL="https://tok-emb-456@embed.internal/v1",
    )
    shown = run(env, "config")
    assert shown.returncode == 0, shown.stderr
    for secret in ("PASS-llm-123", "alice", "tok-emb-456"):
        assert secret not in shown.stdout
    settings = json.loads(shown.stdout)
    assert settings["llm_url"] == "http://***@models.internal:8080/v1"
    assert settings["embedding_url"] == "https://***@embed.internal/v1"


def test_credentials_in_a_url_beside_its_key_are_a_configuration_error(tmp_path: Path) -> None:
    env = memoryd_env(
        tmp_path,
        MEMORYD_LLM="openai",
        MEMORYD_LLM_URL="http://alice:PASS-llm-123@127.0.0.1:9/v1",
        MEMORYD_LLM_API_KEY="sk-llm-789",
    )
    for command in (["config"], ["serve"]):
        failed = run(env, *command)
        assert failed.returncode == 2, (command, failed.stdout, failed.stderr)
        assert "llm_url" in failed.stderr
        assert "llm_api_key" in failed.stderr
        for secret in ("PASS-llm-123", "alice", "sk-llm-789"):
            assert secret not in failed.stderr + failed.stdout
