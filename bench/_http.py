"""The bench's HTTP client: memoryd's public API only, on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from attrs import define, field

from bench._corpus import Conversation
from bench._stats import per_second

#: Every request gives up after this long: nothing in the bench waits forever.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=600)


class BenchError(RuntimeError):
    """memoryd answered a bench request with an error."""


@define
class Client:
    url: str
    key: str
    session: aiohttp.ClientSession

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post(self.url + path, json=body, headers=self.headers) as r:
            if r.status != 200:
                raise BenchError(f"POST {path} -> {r.status}: {(await r.text())[:500]}")
            answer: dict[str, Any] = await r.json()
            return answer

    async def search(self, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """The answer and the client-side latency in milliseconds."""
        started = time.perf_counter()
        answer = await self.post("/v4/search", body)
        return answer, (time.perf_counter() - started) * 1000


@asynccontextmanager
async def client(url: str, key: str, *, connections: int = 32) -> AsyncIterator[Client]:
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, timeout=REQUEST_TIMEOUT) as session:
        yield Client(url, key, session)


@define
class IngestStats:
    conversations: int = 0
    messages: int = 0
    memories: int = 0
    seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    latencies_ms: list[float] = field(factory=list)

    @property
    def messages_per_second(self) -> float:
        return per_second(self.messages, self.seconds)


async def ingest(
    api: Client, conversations: Iterable[Conversation], *, concurrency: int = 4
) -> IngestStats:
    """POST every conversation, ``concurrency`` at a time; errors stop the run."""
    stats = IngestStats()
    pending = iter(conversations)
    lock = asyncio.Lock()

    async def worker() -> None:
        while True:
            async with lock:
                conversation = next(pending, None)
            if conversation is None:
                return
            started = time.perf_counter()
            answer = await api.post("/v4/conversations", conversation.body())
            stats.latencies_ms.append((time.perf_counter() - started) * 1000)
            stats.conversations += 1
            stats.messages += int(answer["messagesAdded"])
            stats.memories += int(answer["memoriesAdded"])

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    stats.seconds = time.perf_counter() - started
    return stats
