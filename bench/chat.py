"""Chat: time from sending ``POST /api/chat`` to the annotations line of the stream.

The default (data stream) protocol sends one ``CODE:JSON`` line per part;
the annotations (the memories the answer was given) are the ``8:`` line, sent
before the model is asked. With ``llm = "extractive"`` there is no model
latency at all, so this is memoryd's own retrieval and prompt work.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from attrs import define

from bench._http import BenchError, Client
from bench._stats import Latency

ANNOTATIONS = b"8:"


@define
class ChatResult:
    available: bool
    latency: Latency
    note: str = ""


async def time_to_annotations(api: Client, question: str) -> float:
    """Milliseconds until the ``8:`` line arrives; reads the rest of the answer too."""
    body = {"messages": [{"role": "user", "content": question}]}
    started = time.perf_counter()
    elapsed: float | None = None
    async with api.session.post(api.url + "/api/chat", json=body, headers=api.headers) as r:
        if r.status != 200:
            raise BenchError(f"POST /api/chat -> {r.status}: {(await r.text())[:300]}")
        while line := await r.content.readline():
            if elapsed is None and line.startswith(ANNOTATIONS):
                elapsed = (time.perf_counter() - started) * 1000
    if elapsed is None:
        raise BenchError("the chat stream had no annotations (8:) line")
    return elapsed


async def run_chat(api: Client, questions: Sequence[str]) -> ChatResult:
    async with api.session.post(api.url + "/api/chat", json={}, headers=api.headers) as r:
        if r.status in (404, 405):
            return ChatResult(False, Latency.of([]), "POST /api/chat is not served")
    times = [await time_to_annotations(api, q) for q in questions]
    return ChatResult(True, Latency.of(times))
