"""Load: concurrent search clients for a fixed time, with wrk when it is installed.

wrk (Debian's ``wrk``) runs with a Lua script that posts a different question
on every request, so the search cache never answers; its ``done`` hook
prints the counts and percentiles as one JSON line. Without wrk, an asyncio
client does the same (it shares the CPU with the server, and costs more of
it than wrk does). Both are bounded by time, on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from attrs import define

from bench._stats import Latency, per_second

_LUA = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local key = "%(key)s"
local counter = 0
local threads = %(threads)d
local thread_id = 0
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end
function init(args)
  thread_id = tonumber(tid) or 0
end
function request()
  local i = (counter * threads + thread_id) %% #bodies + 1
  counter = counter + 1
  return wrk.format("POST", "/v4/search",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}, bodies[i])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d,'
    .. ' "status": %%d, "timeout": %%d, "p50": %%d, "p95": %%d, "p99": %%d, "mean": %%f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean))
end
"""


@define
class LoadResult:
    tool: str
    clients: int
    seconds: float
    requests: int
    errors: int
    latency: Latency
    distinct_queries: int
    server_cpu_seconds: float = 0.0

    @property
    def throughput(self) -> float:
        return per_second(self.requests, self.seconds)


def run_wrk(
    url: str, key: str, queries: Sequence[str], *, clients: int, seconds: int, work: Path
) -> LoadResult:
    threads = 2
    bodies = work / "search-bodies.jsonl"
    bodies.write_text("".join(json.dumps({"q": q, "limit": 10}) + "\n" for q in queries), "utf-8")
    script = work / "search.lua"
    script.write_text(_LUA % {"bodies": bodies, "key": key, "threads": threads}, "utf-8")
    command = [
        "wrk", "-t", str(threads), "-c", str(clients), "-d", f"{seconds}s",
        "--timeout", "10s", "-s", str(script), url,
    ]  # fmt: skip
    out = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 120, check=True
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    r = json.loads(line[len("RESULT ") :])
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return LoadResult(
        tool="wrk",
        clients=clients,
        seconds=r["duration_us"] / 1e6,
        requests=r["requests"],
        errors=errors,
        latency=Latency(
            r["requests"], r["p50"] / 1000, r["p95"] / 1000, r["p99"] / 1000, r["mean"] / 1000
        ),
        distinct_queries=min(len(queries), r["requests"]),
    )


async def run_asyncio(
    url: str, key: str, queries: Sequence[str], *, clients: int, seconds: float
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    counter = 0
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {key}"}
    timeout = aiohttp.ClientTimeout(total=10)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors, counter
        while time.perf_counter() < deadline:
            q = queries[counter % len(queries)]
            counter += 1
            started = time.perf_counter()
            try:
                async with session.post(
                    url + "/v4/search", json={"q": q, "limit": 10}, headers=headers
                ) as r:
                    await r.read()
                    ok = r.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                errors += 1

    connector = aiohttp.TCPConnector(limit=clients)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return LoadResult(
        tool="asyncio (aiohttp) client",
        clients=clients,
        seconds=elapsed,
        requests=len(latencies) + errors,
        errors=errors,
        latency=Latency.of(latencies),
        distinct_queries=min(len(queries), counter),
    )


async def run_load(
    url: str,
    key: str,
    queries: Sequence[str],
    *,
    clients: int,
    seconds: int,
    work: Path,
    tool: str = "auto",
) -> LoadResult:
    if tool in ("auto", "wrk") and shutil.which("wrk"):
        return await asyncio.to_thread(
            run_wrk, url, key, queries, clients=clients, seconds=seconds, work=work
        )
    return await run_asyncio(url, key, queries, clients=clients, seconds=seconds)
