"""Queued ingest survives kill -9: what was queued is embedded after the restart.

A real ``memoryd serve`` with ``MEMORYD_QUEUED_INGEST=1`` (the real MiniLM)
answers a long conversation ``queued`` and is killed with SIGKILL while the
conversation is still queued; restarted on the same data dir, it finishes the
work: the conversation is ``done`` and its memories are found.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.e2e._server import free_port, memoryd_command, memoryd_env, running
from tests.e2e.test_durability import call

#: Enough turns that embedding them takes seconds on 2 cores (about 15 ms a text).
TURNS = 400
NEEDLE = "My grandmother's plum dumplings always had a pinch of cinnamon in the dough."


def conversation() -> dict[str, Any]:
    messages = [
        {
            "role": ("user", "assistant")[i % 2],
            "content": f"Turn {i}: we talked about the weather on day {i} and the garden.",
        }
        for i in range(TURNS)
    ]
    messages[TURNS // 2] = {"role": "user", "content": NEEDLE}
    return {"conversationId": "long", "messages": messages}


def test_queued_work_survives_kill_9_and_is_finished_at_restart(tmp_path: Path) -> None:
    env = memoryd_env(tmp_path / "data", MEMORYD_PORT=str(free_port()), MEMORYD_QUEUED_INGEST="1")
    with running(memoryd_command("serve"), env) as server:
        key = server.first_key
        assert key, server.output
        status, answer = call(server.url, key, "POST", "/v4/conversations", conversation())
        assert status == 200, answer
        assert (answer["status"], answer["messagesAdded"]) == ("queued", TURNS)
        status, listed = call(server.url, key, "GET", "/v3/documents/processing")
        assert status == 200
        # Killed while the work is still queued (a check, so that the test means something).
        assert [d["id"] for d in listed["documents"]] == [answer["id"]], listed
        server.kill9()

    with running(memoryd_command("serve"), env) as server:
        deadline = time.monotonic() + 180
        while True:
            status, listed = call(server.url, key, "GET", "/v3/documents/processing")
            assert status == 200
            if listed["totalCount"] == 0:
                break
            assert time.monotonic() < deadline, "the queued work was not finished"
            time.sleep(0.2)
        status, doc = call(server.url, key, "GET", f"/v3/documents/{answer['id']}")
        assert status == 200
        assert doc["status"] == "done"
        assert len(doc["memories"]) >= TURNS  # every turn has its memory, none twice
        assert len({m["id"] for m in doc["memories"]}) == len(doc["memories"])
        positions = len(doc["memories"])
        status, found = call(
            server.url, key, "POST", "/v4/search", {"q": "grandmother dumplings cinnamon"}
        )
        assert status == 200
        assert "plum dumplings" in found["results"][0]["memory"]

    # Nothing is embedded twice by a second restart.
    with running(memoryd_command("serve"), env) as server:
        status, doc = call(server.url, key, "GET", f"/v3/documents/{answer['id']}")
        assert (doc["status"], len(doc["memories"])) == ("done", positions)
