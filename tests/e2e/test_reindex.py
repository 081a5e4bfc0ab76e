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


def test_reindex_embedder_switches_the_model(tmp_path: Path) -> None:
    data = tmp_path / "data"
    minilm = memoryd_env(data, MEMORYD_PORT=str(free_port()), MEMORYD_EMBEDDER="minilm")
    e5 = {**minilm, "MEMORYD_EMBEDDER": "e5"}
    key = run(minilm, "keys", "create", "--tenant", "acme").stdout.strip().splitlines()[-1]
    conversations = tmp_path / "convs.jsonl"
    texts = ["I keep bees on the roof.", "My bike is a red Bianchi.", "We moved to Lisbon in May."]
    conversations.write_text(
        "\n".join(
            json.dumps({"conversationId": f"c{i}", "messages": [{"role": "user", "content": t}]})
            for i, t in enumerate(texts)
        ),
        encoding="utf-8",
    )
    with running(memoryd_command("serve"), minilm) as server:
        run(
            {**minilm, "MEMORYD_URL": server.url, "MEMORYD_API_KEY": key},
            "ingest",
            str(conversations),
        )
        # A server holds the file: the switch refuses to start, and changes nothing.
        busy = subprocess.run(
            memoryd_command("reindex", "--embedder", "e5"),
            env=minilm, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert busy.returncode == 2
        assert "open in another memoryd process" in busy.stderr
    database = next(data.glob("*.sqlite3"))
    with sqlite3.connect(database) as conn:
        old_ids = {r[0] for r in conn.execute("SELECT id FROM memories")}
        assert len(old_ids) == 3

    switched = run(minilm, "reindex", "--embedder", "e5")
    lines = switched.stdout.splitlines()
    assert lines[0] == (
        "Re-embedding 3 conversations from 'all-MiniLM-L6-v2-int8' to 'multilingual-e5-small-q4'"
    )
    assert "Re-embedded 3 conversations, 3 memories with 'multilingual-e5-small-q4'." in lines
    assert "[1/1] tenant acme: 3 conversations, 3 memories" in lines
    assert lines[-1].startswith("The data dir is now embedded with 'multilingual-e5-small-q4'")
    assert "conv" in switched.stderr  # the progress bar
    with sqlite3.connect(database) as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        new_ids = {r[0] for r in conn.execute("SELECT id FROM memories")}
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    assert meta["embedding_model"] == "multilingual-e5-small-q4"
    assert not any(k.startswith("embedding_switch") for k in meta)
    assert len(new_ids) == 3
    assert not new_ids & old_ids

    with running(memoryd_command("serve"), e5) as server:
        client = {**e5, "MEMORYD_URL": server.url, "MEMORYD_API_KEY": key}
        found = json.loads(run(client, "search", "what colour is my bicycle", "--json").stdout)
        assert found["results"][0]["conversationId"] == "c1"
        assert found["results"][0]["id"] in new_ids

    refused = subprocess.run(
        memoryd_command("serve"), env=minilm, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "'multilingual-e5-small-q4'" in refused.stderr
    assert "'all-MiniLM-L6-v2-int8'" in refused.stderr


def test_an_interrupted_switch_is_refused_until_it_is_run_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = memoryd_env(data, MEMORYD_PORT=str(free_port()), MEMORYD_EMBEDDER="e5")
    key = run(env, "keys", "create", "--tenant", "acme").stdout.strip().splitlines()[-1]
    conversations = tmp_path / "convs.json"
    conversations.write_text(
        json.dumps({"conversationId": "c0", "messages": [{"role": "user", "content": "Bees."}]}),
        encoding="utf-8",
    )
    with running(memoryd_command("serve"), env) as server:
        run(
            {**env, "MEMORYD_URL": server.url, "MEMORYD_API_KEY": key}, "ingest", str(conversations)
        )
    database = next(data.glob("*.sqlite3"))
    # What a crash midway leaves: the switch marked, not finished.
    with sqlite3.connect(database) as conn:
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [
                ("embedding_switch_model", "all-MiniLM-L6-v2-int8"),
                ("embedding_switch_dimension", "384"),
                ("embedding_switch_embedder", "minilm"),
            ],
        )
    for embedder in ("e5", "minilm"):
        refused = subprocess.run(
            memoryd_command("serve"), env={**env, "MEMORYD_EMBEDDER": embedder},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert refused.returncode == 2
        assert "reindex --embedder minilm did not finish" in refused.stderr
        assert "'multilingual-e5-small-q4' to 'all-MiniLM-L6-v2-int8'" in refused.stderr
    run(env, "reindex", "--embedder", "minilm")
    with running(memoryd_command("serve"), {**env, "MEMORYD_EMBEDDER": "minilm"}) as server:
        client = {**env, "MEMORYD_URL": server.url, "MEMORYD_API_KEY": key}
        found = json.loads(run(client, "search", "bees", "--json").stdout)
        assert found["results"][0]["conversationId"] == "c0"
