"""``memoryd reindex``: the index rebuilt from the store, every tenant's or one's."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

from tests.e2e._server import free_port, memoryd_command, memoryd_env, running


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        memoryd_command(*args), env=env, capture_output=True, text=True, check=True, timeout=120
    )


def test_reindex_rebuilds_every_tenant_then_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = memoryd_env(data, MEMORYD_PORT=str(free_port()))
    assert "Nothing to reindex" in run(env, "reindex").stdout
    keys = {
        tenant: run(env, "keys", "create", "--tenant", tenant).stdout.strip().splitlines()[-1]
        for tenant in ("acme", "globex")
    }
    conversations = tmp_path / "convs.jsonl"
    conversations.write_text(
        "\n".join(
            json.dumps({"conversationId": f"c{i}", "messages": [{"role": "user", "content": t}]})
            for i, t in enumerate(["I keep bees on the roof.", "My bike is a red Bianchi."])
        ),
        encoding="utf-8",
    )
    with running(memoryd_command("serve"), env) as server:
        for key in keys.values():
            client = {**env, "MEMORYD_URL": server.url, "MEMORYD_API_KEY": key}
            run(client, "ingest", str(conversations))

    # A change left pending (as a failed index update leaves it) is drained too.
    database = next(data.glob("*.sqlite3"))
    with sqlite3.connect(database) as conn:
        conn.execute(
            "INSERT INTO outbox (tenant_id, conversation_id, scope, change) VALUES"
            """ ('acme', 'c9', '', '{"added":[],"removed":["gone"],"tags":null,"""
            """"metadata":null,"context":[]}')"""
        )

    everything = run(env, "reindex").stdout.splitlines()
    assert everything == [
        "[1/2] tenant acme: 2 conversations, 2 memories",
        "[2/2] tenant globex: 2 conversations, 2 memories",
        "Reindexed.",
    ]
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    one = run(env, "reindex", "--tenant", "globex").stdout.splitlines()
    assert one == ["[1/1] tenant globex: 2 conversations, 2 memories", "Reindexed."]

    with running(memoryd_command("serve"), env) as server:
        client = {**env, "MEMORYD_URL": server.url, "MEMORYD_API_KEY": keys["acme"]}
        found = json.loads(run(client, "search", "what colour is my bicycle", "--json").stdout)
        assert found["results"][0]["conversationId"] == "c1"
