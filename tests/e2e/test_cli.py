"""The CLI as a user drives it: keys, ingest from a file, search, config."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e._server import free_port, memoryd_command, memoryd_env, running


def run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        memoryd_command(*args), env=env, capture_output=True, text=True, check=check, timeout=120
    )


def test_keys_ingest_search(tmp_path: Path) -> None:
    env = memoryd_env(tmp_path / "data", MEMORYD_PORT=str(free_port()))
    created = run(
        env, "keys", "create", "--tenant", "acme", "--tag", "notes", "--quota-tokens", "500"
    )
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("md_")
    listed = run(env, "keys", "list").stdout
    assert "acme" in listed
    assert "notes" in listed
    assert key not in listed  # the key itself is never shown again

    conversations = tmp_path / "convs.jsonl"
    conversations.write_text(
        "\n".join(
            json.dumps({"conversationId": f"c{i}", "messages": [{"role": "user", "content": text}]})
            for i, text in enumerate(["I keep bees on the roof.", "My bike is a red Bianchi."])
        ),
        encoding="utf-8",
    )
    with running(memoryd_command("serve"), env) as server:
        assert server.first_key is None  # a key existed, so none was made
        client_env = {**env, "MEMORYD_URL": server.url, "MEMORYD_API_KEY": key}
        ingested = run(client_env, "ingest", str(conversations))
        assert "2 of 2 conversations stored" in ingested.stdout, ingested
        assert "ingest" in ingested.stderr  # the progress bar
        found = run(client_env, "search", "what colour is my bicycle", "--json")
        answer = json.loads(found.stdout)
        assert answer["results"][0]["conversationId"] == "c1"
        assert answer["results"][0]["containerTags"] == ["notes"]

        asked = run(client_env, "chat", "Do I keep bees?")
        assert "bees" in asked.stdout  # the extractive backend quotes the memory
        assert "thread:" in asked.stderr

        key_id = run(env, "keys", "list").stdout.splitlines()[1].split()[0]
        assert "Revoked" in run(env, "keys", "revoke", key_id).stdout
        refused = run(client_env, "search", "bees", check=False)
        assert refused.returncode == 1
        assert "401" in refused.stderr


def test_config_hides_secrets(tmp_path: Path) -> None:
    env = memoryd_env(tmp_path, MEMORYD_LLM_API_KEY="sk-very-secret")
    shown = run(env, "config").stdout
    assert "sk-very-secret" not in shown
    assert json.loads(shown)["llm_api_key"] == "***"


def test_bad_settings_name_the_setting(tmp_path: Path) -> None:
    env = memoryd_env(tmp_path, MEMORYD_PORT="eighty")
    failed = run(env, "config", check=False)
    assert failed.returncode == 2
    assert "port" in failed.stderr
