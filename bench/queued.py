"""Queued ingest (setting ``queued_ingest``): how fast a write is durable, and how fast done.

    python -m bench.queued [--messages 600] [--locomo PATH] [--work DIR]

Starts a real memoryd with ``MEMORYD_QUEUED_INGEST=1`` on a fresh data dir,
POSTs LoCoMo conversations (``Corpus.conversations``: pieces of 20-50 turns)
4 at a time, then polls ``GET /v3/documents/processing`` until nothing is
queued. Reports messages per second to the durable answer (every write
answered ``queued``) and to done (every memory embedded and searchable), and
checks that each conversation is found by searching one of its turns.

:func:`run_queued` is what the quick bench calls: it raises ``BenchError`` if
a write is not answered ``queued``, if the queue does not empty, or if a
conversation is not found; it never judges the timing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from attrs import frozen

from bench import locomo_eval as le
from bench._corpus import Conversation, Corpus
from bench._http import BenchError, Client, client
from bench._server import Server, start_server
from bench._stats import per_second

#: The server's settings for this bench: queued ingest on.
ENV = {"MEMORYD_QUEUED_INGEST": "1"}
#: Seconds the queue may take to empty before the run fails.
DONE_TIMEOUT = 1800.0


@frozen
class QueuedResult:
    conversations: int
    messages: int
    #: Seconds until every write was answered (durable, ``queued``).
    answered_seconds: float
    #: Seconds until the processing list was empty (every memory committed).
    done_seconds: float
    #: How many of the conversations a search for one of their turns found (top 10).
    found: int
    #: How many writes were answered ``queued`` (the rest ``done``: embedded before
    #: the answer, which queued ingest never does for a new conversation).
    queued: int

    @property
    def answered_per_second(self) -> float:
        return per_second(self.messages, self.answered_seconds)

    @property
    def done_per_second(self) -> float:
        return per_second(self.messages, self.done_seconds)


async def _processing(api: Client) -> int:
    async with api.session.get(api.url + "/v3/documents/processing", headers=api.headers) as r:
        if r.status != 200:
            raise BenchError(f"GET /v3/documents/processing -> {r.status}")
        return int((await r.json())["totalCount"])


async def run_queued(
    server: Server, conversations: Sequence[Conversation], *, concurrency: int = 4
) -> QueuedResult:
    """Ingest ``conversations`` into a queued-ingest ``server``, wait until done, search each."""
    if server.key is None:
        raise BenchError("the server printed no API key")
    async with client(server.url, server.key) as api:
        pending = list(conversations)
        statuses: list[str] = []
        messages = 0

        async def worker() -> None:
            nonlocal messages
            while pending:
                answer = await api.post("/v4/conversations", pending.pop(0).body())
                statuses.append(str(answer["status"]))
                messages += int(answer["messagesAdded"])

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        answered = time.perf_counter() - started
        while await _processing(api):
            if time.perf_counter() - started > DONE_TIMEOUT:
                raise BenchError(f"the queue did not empty in {DONE_TIMEOUT:.0f} s")
            await asyncio.sleep(0.25)
        done = time.perf_counter() - started
        if set(statuses) - {"queued", "done"}:
            raise BenchError(f"unexpected ingest statuses: {sorted(set(statuses))}")

        rng = random.Random(7)
        found = 0
        for conversation in conversations:
            text = str(rng.choice(conversation.messages)["content"])
            answer, _ = await api.search({"q": text, "limit": 10})
            ids = {r.get("conversationId") for r in answer["results"]}
            found += conversation.conversation_id in ids
        if found < len(conversations):
            raise BenchError(
                f"only {found} of {len(conversations)} conversations were found after done"
            )
    return QueuedResult(
        conversations=len(conversations),
        messages=messages,
        answered_seconds=answered,
        done_seconds=done,
        found=found,
        queued=statuses.count("queued"),
    )


def measure(work: Path, corpus: Corpus, messages: int) -> QueuedResult:
    """A fresh queued-ingest server in ``work``, fed ``messages`` LoCoMo messages."""
    conversations = list(corpus.conversations(messages, prefix="q"))
    with start_server(work / "queued", env=ENV) as server:
        return asyncio.run(run_queued(server, conversations))


def render(result: QueuedResult) -> str:
    """The result as the Markdown lines docs/benchmarks.md takes."""
    return "\n".join(
        [
            "| queued ingest | value |",
            "|---|---|",
            f"| conversations / messages | {result.conversations} / {result.messages} |",
            f"| writes answered `queued` | {result.queued} |",
            f"| messages/s to the durable answer | {result.answered_per_second:.0f} |",
            f"| messages/s to done (embedded, searchable) | {result.done_per_second:.1f} |",
            f"| conversations found after done | {result.found} of {result.conversations} |",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.queued", description=__doc__)
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--locomo", type=Path, default=le.DEFAULT_PATH)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args(argv)
    corpus = Corpus(le.load_locomo(args.locomo))
    with tempfile.TemporaryDirectory(prefix="bench-queued-") as scratch:
        result = measure(args.work or Path(scratch), corpus, args.messages)
    print(render(result))


if __name__ == "__main__":
    main()
