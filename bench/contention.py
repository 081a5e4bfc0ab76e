"""Search while a maximal ingest runs: does ingest starve search?

Against one fresh memoryd (a few LoCoMo-like conversations stored first, so
that searches find something):

- ``idle``: ``POST /v4/search`` one request at a time, every question distinct
  (no cache hits), nothing else running;
- ``busy``: the same, while one ``POST /v4/conversations`` embeds as close to
  ``max_embed_tokens`` as a conversation can get without passing it (the most
  work one request may cause), searches running back to back until it ends;
- ``flood``: the same searches, for ``flood_seconds``, while
  :data:`FLOOD_CLIENTS` clients each post ordinary conversations (20–50
  LoCoMo-like messages) back to back;
- ``alone``: a second maximal ingest with nothing else running: its wall time
  and the server's CPU seconds are the worst-case cost of one request;
- ``/health`` asked every 50 ms during the busy phase.

The target (issue 12): search p95 during the maximal ingest, and during the
flood, each within 3× the idle p95. Both ratios come from one server in one
run, so they are fair on a shared machine where absolute figures move.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from attrs import define, field, frozen

from bench._corpus import Conversation, Corpus
from bench._http import Client, client, ingest
from bench._server import Server, start_server
from bench._stats import Latency
from bench.build import server_settings

#: Search p95 during a maximal ingest may be at most this many times its idle p95.
TARGET_RATIO = 3.0
#: Seconds between ``/health`` probes during the busy phase.
HEALTH_EVERY = 0.05
#: Clients that ingest continuously during the flood phase.
FLOOD_CLIENTS = 4
#: Seconds the flood runs before its searches start (every client has a request in flight).
FLOOD_WARMUP_S = 1.0
#: Most searches in the flood phase (it ends after its seconds, or these).
FLOOD_MOST = 5_000


@frozen
class ContentionResult:
    cap: int
    ingest_tokens: int
    ingest_messages: int
    idle: Latency
    busy: Latency
    health: Latency
    #: The busy ingest's wall time (searches running), seconds.
    busy_seconds: float
    #: The lone maximal ingest: wall time and server CPU seconds.
    alone_seconds: float
    alone_cpu_seconds: float
    #: Search during :data:`FLOOD_CLIENTS` continuous ingests, and what they ingested meanwhile.
    flood: Latency = field(factory=lambda: Latency.of([]))
    flood_seconds: float = 0.0
    flood_conversations: int = 0
    flood_messages: int = 0

    @property
    def ratio(self) -> float:
        """Search p95 during the maximal ingest over idle p95."""
        return self.busy.p95 / self.idle.p95 if self.idle.p95 else 0.0

    @property
    def flood_ratio(self) -> float:
        """Search p95 during the continuous ingests over idle p95."""
        return self.flood.p95 / self.idle.p95 if self.idle.p95 else 0.0

    @property
    def flood_messages_per_second(self) -> float:
        return self.flood_messages / self.flood_seconds if self.flood_seconds else 0.0

    @property
    def met(self) -> bool:
        return 0 < self.ratio <= TARGET_RATIO

    @property
    def flood_met(self) -> bool:
        return 0 < self.flood_ratio <= TARGET_RATIO


def _token_counter(env: Mapping[str, str]) -> tuple[Any, Any, int]:
    """memoryd's own token counter, memory policy and ``max_embed_tokens`` for ``env``."""
    from memoryd.adapters.tokens import tiktoken_counter
    from memoryd.bootstrap import Container

    settings = server_settings(env)
    counter = tiktoken_counter(settings.token_encoding)
    counter.load()
    return counter, Container(settings=settings).policy(), settings.max_embed_tokens


def message_tokens(message: Mapping[str, Any], counter: Any, policy: Any) -> int:
    """Tokens memoryd sends to the embedder for one message (its pieces depend on it alone)."""
    from memoryd.core.ingest import CHARS_PER_TOKEN
    from memoryd.core.memories import build_memories
    from memoryd.core.model import Message, StoredMessage

    stamp = datetime.fromisoformat(str(message["timestamp"]).replace("Z", "+00:00"))
    stored = StoredMessage(
        message=Message.from_text(
            message["role"], message["content"], name=message["name"], timestamp=stamp
        ),
        position=0,
        received_at=datetime.now(UTC),
    )
    drafts = build_memories([stored], start=0, policy=policy)
    return sum(
        max(int(counter.count(t)), len(t) // CHARS_PER_TOKEN) for d in drafts for t in d.embed_texts
    )


def maximal(
    corpus: Corpus, env: Mapping[str, str], conversation_id: str, *, skip: int = 0
) -> tuple[Conversation, int, int]:
    """A conversation whose embedded tokens come as close to the cap as possible.

    Messages of the corpus's conversations (after the first ``skip`` messages) are
    added while they fit. Returns it, its tokens and the cap.
    """
    counter, policy, cap = _token_counter(env)
    messages: list[Mapping[str, Any]] = []
    tokens = 0
    seen = 0
    source: Iterator[Conversation] = corpus.conversations(cap + skip + 1000, prefix=conversation_id)
    for conversation in source:
        for message in conversation.messages:
            seen += 1
            if seen <= skip:
                continue
            cost = message_tokens(message, counter, policy)
            if tokens + cost > cap:
                if cap - tokens < 40 or len(messages) >= 5000:  # close enough; bounded
                    return _conversation(conversation_id, messages), tokens, cap
                continue
            messages.append(message)
            tokens += cost
    return _conversation(conversation_id, messages), tokens, cap


def _conversation(conversation_id: str, messages: Sequence[Mapping[str, Any]]) -> Conversation:
    return Conversation(
        conversation_id=conversation_id,
        messages=tuple(messages),
        container_tags=("contention",),
        metadata={},
    )


async def _searches(api: Client, questions: Iterator[str], *, until: asyncio.Future[Any] | None,
                    count: int) -> list[float]:  # fmt: skip
    """Latencies (ms) of searches one at a time: ``count`` of them, or until ``until`` is done."""
    times: list[float] = []
    for _ in range(count):
        if until is not None and until.done():
            break
        question = next(questions, None)
        if question is None:
            break
        _, ms = await api.search({"q": question, "limit": 10})
        times.append(ms)
    return times


async def _health(url: str, session: aiohttp.ClientSession, stop: asyncio.Event) -> list[float]:
    times: list[float] = []
    while not stop.is_set() and len(times) < 100_000:
        started = time.perf_counter()
        async with session.get(url + "/health") as r:
            await r.read()
        times.append((time.perf_counter() - started) * 1000)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HEALTH_EVERY)
    return times


async def run_contention(
    corpus: Corpus,
    work: Path,
    *,
    idle_searches: int,
    env: Mapping[str, str],
    flood_seconds: float = 30.0,
    log: Any = None,
) -> ContentionResult:
    """Idle and busy search latency against one fresh server; see the module docstring."""
    busy_conversation, tokens, cap = maximal(corpus, env, "max-a")
    alone_conversation, _, _ = maximal(corpus, env, "max-b", skip=len(busy_conversation.messages))
    questions = iter(corpus.questions(idle_searches + FLOOD_MOST + 3_010, seed=7))
    with start_server(work / "contention", env=env) as server:
        assert server.key is not None
        async with client(server.url, server.key) as api:
            await ingest(api, list(corpus.conversations(200, prefix="seed")), concurrency=2)
            await _searches(api, questions, until=None, count=10)  # warm up
            idle = await _searches(api, questions, until=None, count=idle_searches)
            if log:
                log(f"contention: a maximal ingest of {tokens:,} tokens (cap {cap:,}) ...")
            stop = asyncio.Event()
            health = asyncio.create_task(_health(server.url, api.session, stop))
            started = time.perf_counter()
            big = asyncio.ensure_future(api.post("/v4/conversations", busy_conversation.body()))
            busy = await _searches(api, questions, until=big, count=3_000)
            await big
            busy_seconds = time.perf_counter() - started
            stop.set()
            health_times = await health
            if log:
                log(f"contention: {flood_seconds:.0f} s of searches while {FLOOD_CLIENTS} "
                    "clients ingest ...")  # fmt: skip
            flood = await _flood(api, corpus, questions, seconds=flood_seconds)
            alone_seconds, alone_cpu = await _alone(api, server, alone_conversation)
    return ContentionResult(
        cap=cap,
        ingest_tokens=tokens,
        ingest_messages=len(busy_conversation.messages),
        idle=Latency.of(idle),
        busy=Latency.of(busy),
        health=Latency.of(health_times),
        busy_seconds=busy_seconds,
        alone_seconds=alone_seconds,
        alone_cpu_seconds=alone_cpu,
        flood=Latency.of(flood.searches),
        flood_seconds=flood.seconds,
        flood_conversations=flood.conversations,
        flood_messages=flood.messages,
    )


@define
class _Flood:
    searches: list[float] = field(factory=list)
    seconds: float = 0.0
    conversations: int = 0
    messages: int = 0


async def _flood(
    api: Client, corpus: Corpus, questions: Iterator[str], *, seconds: float
) -> _Flood:
    """Searches one at a time for ``seconds`` while :data:`FLOOD_CLIENTS` clients ingest.

    Each client posts fresh conversations of its own until the searches are done;
    the conversations it finishes in that time are counted.
    """
    result = _Flood()
    stop = asyncio.Event()

    async def ingester(number: int) -> None:
        # Bounded: far more messages than any run posts in its searches' time.
        own = Corpus(corpus.samples, seed=corpus.seed + 1 + number)  # texts of its own
        for conversation in own.conversations(200_000, prefix=f"flood{number}-"):
            if stop.is_set():
                return
            answer = await api.post("/v4/conversations", conversation.body())
            if not stop.is_set():
                result.conversations += 1
                result.messages += int(answer["messagesAdded"])

    clients = [asyncio.create_task(ingester(n)) for n in range(FLOOD_CLIENTS)]
    try:
        await asyncio.sleep(FLOOD_WARMUP_S)
        started = time.perf_counter()
        until = asyncio.ensure_future(asyncio.sleep(seconds))
        result.searches = await _searches(api, questions, until=until, count=FLOOD_MOST)
        until.cancel()
        result.seconds = time.perf_counter() - started
    finally:
        stop.set()
        await asyncio.gather(*clients)  # each ends after its request in flight
    return result


async def _alone(api: Client, server: Server, conversation: Conversation) -> tuple[float, float]:
    cpu = server.cpu_seconds()
    started = time.perf_counter()
    await api.post("/v4/conversations", conversation.body())
    return time.perf_counter() - started, server.cpu_seconds() - cpu
