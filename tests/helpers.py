"""Helpers shared by tests (importable as ``tests.helpers``)."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from attrs import define, field

from memoryd.settings import Settings, load_settings

MakeKey = Callable[..., Awaitable[str]]


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings as a user's defaults, in ``data_dir``, unaffected by this shell's MEMORYD_*."""
    flags: dict[str, Any] = {"data_dir": data_dir, "llm": "extractive", **overrides}
    return load_settings(flags=flags, env={})


async def run_process(*command: str, cwd: Path, seconds: float) -> tuple[int, str, str]:
    """Run ``command`` in ``cwd``: its exit code, stdout and stderr (killed after ``seconds``)."""
    process = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(seconds):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def serve_on_loopback(runner: web.AppRunner) -> str:
    """Set ``runner`` up on 127.0.0.1 at a free port; its base URL (``cleanup()`` stops it)."""
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


#: Writes the start of an SSE answer, given the request body.
Opening = Callable[[bytes, web.StreamResponse], Awaitable[None]]


@define
class StallingCompletions:
    """A ``/v1/chat/completions`` server on loopback that starts an answer, then goes silent.

    ``opening`` writes the first events; the handler then waits until the
    server closes. Handlers are cancelled when their client disconnects, and
    ``client_left`` is set then.
    """

    opening: Opening
    #: How many answers were asked for.
    requests: int = 0
    client_left: asyncio.Event = field(factory=asyncio.Event)
    _closing: asyncio.Event = field(factory=asyncio.Event)
    _runner: web.AppRunner | None = None
    #: The OpenAI base URL, ending in ``/v1``.
    url: str = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
        self.url = await serve_on_loopback(self._runner) + "/v1"

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        try:
            body = await request.read()
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await self.opening(body, response)
            await self._closing.wait()
            return response
        except asyncio.CancelledError:
            self.client_left.set()
            raise


@contextlib.asynccontextmanager
async def memoryd_on_loopback(settings: Settings) -> AsyncIterator[tuple[str, web.AppRunner]]:
    """The real app on the real runner that ``memoryd serve`` uses: its base URL and runner."""
    from memoryd import bootstrap
    from memoryd.adapters.http import make_runner

    runner = make_runner(await bootstrap.create_app(settings), bootstrap.server_limits(settings))
    try:
        yield await serve_on_loopback(runner), runner
    finally:
        await runner.cleanup()


@define
class HealthProbe:
    """Asks ``GET /health`` on a fresh connection every ``every`` s while in its ``async with``.

    ``times`` are the answer times in seconds (``inf`` for a failed probe). At most ``most``
    probes, each within ``timeout`` s.
    """

    url: str
    every: float = 0.05
    most: int = 400
    timeout: float = 10.0
    times: list[float] = field(factory=list)
    statuses: list[int] = field(factory=list)
    _stop: asyncio.Event = field(factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> HealthProbe:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, self.timeout + 1)

    @property
    def slowest(self) -> float:
        return max(self.times, default=0.0)

    def summary(self) -> str:
        if not self.times:
            return "/health: no probe"
        return (
            f"/health: {len(self.times)} probes, median {statistics.median(self.times) * 1000:.1f}"
            f" ms, slowest {self.slowest * 1000:.1f} ms"
        )

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            for _ in range(self.most):
                started = time.perf_counter()
                try:
                    async with session.get(self.url + "/health") as response:
                        await response.read()
                        self.statuses.append(response.status)
                        self.times.append(time.perf_counter() - started)
                except (aiohttp.ClientError, TimeoutError):
                    self.statuses.append(0)
                    self.times.append(float("inf"))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.every)
                if self._stop.is_set():
                    return
