"""A 200 on a write survives kill -9 of the server right after it."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e._server import free_port, memoryd_command, memoryd_env, running

ROUNDS = 10


def call(url: str, key: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    env = memoryd_env(tmp_path / "data", MEMORYD_PORT=str(free_port()))
    key = None
    acknowledged: list[str] = []
    for round_ in range(ROUNDS):
        with running(memoryd_command("serve"), env) as server:
            key = key or server.first_key
            assert key, server.output
            # Everything acknowledged before an earlier kill -9 is there.
            for cid in acknowledged:
                status, found = call(server.url, key, "GET", f"/v4/conversations/{cid}")
                assert status == 200, (round_, cid, found)
                assert found["messages"][-1]["content"] == f"message {cid}"
            cid = f"conv-{round_}"
            body = {
                "conversationId": cid,
                "messages": [
                    {"role": "user", "content": f"round {round_} of the durability test"},
                    {"role": "assistant", "content": f"message {cid}"},
                ],
            }
            status, answer = call(server.url, key, "POST", "/v4/conversations", body)
            assert status == 200, answer
            server.kill9()  # at once, after the 200
            acknowledged.append(cid)

    with running(memoryd_command("serve"), env) as server:
        assert key
        for cid in acknowledged:
            status, _ = call(server.url, key, "GET", f"/v4/conversations/{cid}")
            assert status == 200, cid
        status, found = call(server.url, key, "POST", "/v4/search", {"q": "message conv-7"})
        assert status == 200
        assert "conv-7" in {r["conversationId"] for r in found["results"]}
