"""Hostile clients against the real app on the real runner, on 127.0.0.1.

gzip bombs (issue point 5), slow heads and bodies and a connection flood (6), clients that
leave mid-body or speak broken HTTP (11). During each attack a probe asks ``GET /health``
on fresh connections and the test bounds its answer time. Attackers are raw asyncio
streams; every loop is bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import logging
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from attrs import frozen
from yarl import URL

from memoryd import bootstrap
from memoryd.core.errors import ConfigurationError
from memoryd.settings import Settings
from tests.helpers import HealthProbe, MakeKey, auth, make_settings, memoryd_on_loopback

#: Every /health answer during an attack comes within this many seconds.
HEALTH_BOUND = 1.0
MIB = 1 << 20


def hostile_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings over the data dir of the ``settings`` fixture, so ``make_key``'s keys work."""
    return make_settings(tmp_path / "data", **overrides)


# --- raw connections -------------------------------------------------------------------------


@frozen
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@frozen
class Wire:
    """One raw TCP connection to the server."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @classmethod
    async def open(cls, url: str) -> Wire:
        reader, writer = await asyncio.open_connection("127.0.0.1", URL(url).port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> bool:
        """Write ``data``; False if the server has closed the connection."""
        try:
            self.writer.write(data)
            await self.writer.drain()
        except ConnectionError:
            return False
        return True

    async def answer(self, within: float = 5.0) -> Answer | None:
        """The next response, or None if the server closed the connection without one."""
        async with asyncio.timeout(within):
            status_line = await self.reader.readline()
            if not status_line:
                return None
            headers: dict[str, str] = {}
            for _ in range(100):
                line = await self.reader.readline()
                if line in {b"\r\n", b""}:
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
            return Answer(int(status_line.split()[1]), headers, body)

    async def closed(self, within: float = 5.0) -> bytes:
        """Wait until the server closes the connection; what it sent until then."""
        async with asyncio.timeout(within):
            return await self.reader.read()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: memoryd",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --- gzip bombs ------------------------------------------------------------------------------


@functools.cache
def _bomb_parts(mib: int) -> tuple[bytes, bytes, bytes]:
    """A gzip stream of ``mib`` MiB of zeros as a header, one block to repeat ``mib`` times, a tail.

    Each block is one MiB of zeros compressed and fully flushed: byte-aligned and without
    references back, so repeating it is a valid deflate stream (about 1 KB per MiB).
    """
    zeros = bytes(MIB)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    final_block = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()
    return header, block, final_block + struct.pack("<II", crc, (mib * MIB) & 0xFFFFFFFF)


def gzip_bomb(mib: int) -> Iterator[bytes]:
    """The bomb in pieces, never whole in memory."""
    header, block, tail = _bomb_parts(mib)
    yield header
    for _ in range(mib):
        yield block
    yield tail


def bomb_size(mib: int) -> int:
    header, block, tail = _bomb_parts(mib)
    return len(header) + mib * len(block) + len(tail)


def test_the_bomb_is_valid_gzip() -> None:
    assert gzip.decompress(b"".join(gzip_bomb(3))) == bytes(3 * MIB)
    assert bomb_size(1024) < 1_100_000  # 1 GiB inflated, about 1 MB on the wire


async def send_bomb(url: str, mib: int, extra: dict[str, str]) -> tuple[Answer | None, float]:
    """POST a gzip bomb to /v4/search; the answer and how long it took."""
    wire = await Wire.open(url)
    started = time.perf_counter()
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "Content-Length": str(bomb_size(mib)),
        **extra,
    }
    try:
        await wire.send(request_head("POST", "/v4/search", headers))
        for piece in gzip_bomb(mib):
            if not await wire.send(piece):
                break
        answer = await wire.answer(within=10.0)
        return answer, time.perf_counter() - started
    finally:
        await wire.close()


async def test_unauthenticated_gzip_bombs_get_401_fast_and_health_stays_fast(
    tmp_path: Path,
) -> None:
    async with (
        memoryd_on_loopback(hostile_settings(tmp_path)) as (url, _),
        HealthProbe(url) as probe,
    ):
        await asyncio.sleep(0.2)
        answers = []
        for _ in range(3):  # three waves of four 1 GiB bombs
            answers += await asyncio.gather(*(send_bomb(url, 1024, {}) for _ in range(4)))
        await asyncio.sleep(0.2)
    print(probe.summary(), "; 401 after", [f"{t * 1000:.0f} ms" for _, t in answers])
    assert [a.status if a else None for a, _ in answers] == [401] * 12
    assert max(t for _, t in answers) < HEALTH_BOUND
    assert len(probe.times) >= 5
    assert probe.slowest < HEALTH_BOUND, probe.summary()


async def test_an_authenticated_gzip_bomb_is_413_naming_max_body_bytes(
    tmp_path: Path, make_key: MakeKey
) -> None:
    key = await make_key()
    async with (
        memoryd_on_loopback(hostile_settings(tmp_path)) as (url, _),
        HealthProbe(url) as probe,
    ):
        await asyncio.sleep(0.2)
        answers = await asyncio.gather(
            *(send_bomb(url, 1024, {"Authorization": f"Bearer {key}"}) for _ in range(4))
        )
        await asyncio.sleep(0.2)
    print(probe.summary(), "; 413 after", [f"{t * 1000:.0f} ms" for _, t in answers])
    for answer, _ in answers:
        assert answer is not None
        assert answer.status == 413
        assert "max_body_bytes" in answer.json()["error"]
        assert answer.json()["details"] == {"limitBytes": 10 * MIB}
    assert probe.slowest < HEALTH_BOUND, probe.summary()


JSON_QUERY = json.dumps({"q": "hello"}).encode()


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


async def test_compressed_bodies_are_read_and_bad_ones_refused(
    tmp_path: Path, make_key: MakeKey
) -> None:
    key = await make_key()
    cases = [
        ("gzip", gzip.compress(JSON_QUERY), 200),
        ("x-gzip", gzip.compress(JSON_QUERY), 200),
        ("GZip", gzip.compress(JSON_QUERY[:5]) + gzip.compress(JSON_QUERY[5:]), 200),
        ("deflate", zlib.compress(JSON_QUERY), 200),
        ("deflate", raw_deflate(JSON_QUERY), 200),
        ("identity", JSON_QUERY, 200),
        ("gzip", gzip.compress(JSON_QUERY)[:-12], 400),  # truncated
        ("gzip", b"\x1f\x8b" + b"junk" * 10, 400),
        ("deflate", zlib.compress(JSON_QUERY) + b"trailing", 400),
        ("br", JSON_QUERY, 415),
        ("compress", JSON_QUERY, 415),
        ("gzip, gzip", gzip.compress(gzip.compress(JSON_QUERY)), 415),
    ]
    async with (
        memoryd_on_loopback(hostile_settings(tmp_path, max_body_bytes=4096)) as (url, _),
        aiohttp.ClientSession() as session,
    ):
        for coding, body, status in cases:
            headers = {**auth(key), "Content-Type": "application/json", "Content-Encoding": coding}
            async with session.post(url + "/v4/search", data=body, headers=headers) as response:
                answer = await response.json()
                assert response.status == status, (coding, body[:20], answer)
            if status == 415:
                assert answer["details"] == {"accepted": ["gzip", "deflate", "identity"]}
                assert "gzip, deflate, identity" in answer["error"]
        # Past max_body_bytes once inflated (4 KiB), though 8 KiB of zeros gzip to 40 bytes.
        headers = {**auth(key), "Content-Encoding": "gzip"}
        small_bomb = gzip.compress(b'{"q": "' + b" " * 8192 + b'"}')
        async with session.post(url + "/v4/search", data=small_bomb, headers=headers) as response:
            assert response.status == 413
            answer = await response.json()
        assert "once decompressed" in answer["error"]
        assert "max_body_bytes" in answer["error"]


async def test_body_limits_also_hold_under_aiohttps_own_runner(
    client: TestClient[Any, Any], make_key: MakeKey
) -> None:
    """``aiohttp_client`` inflates bodies itself: the size limit still holds on what it reads."""
    key = await make_key()
    headers = {**auth(key), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = await client.post("/v4/search", data=gzip.compress(JSON_QUERY), headers=headers)
    assert response.status == 200, await response.text()
    response = await client.post("/v4/search", data=b"".join(gzip_bomb(64)), headers=headers)
    assert response.status == 413
    assert "max_body_bytes" in (await response.json())["error"]


# --- slow heads and bodies -------------------------------------------------------------------


async def slow_head(url: str, first: bytes = b"") -> tuple[float, Answer | None, bytes]:
    """Send a request head one line per 0.2 s (40 at most); when the server hung up, and how."""
    wire = await Wire.open(url)
    try:
        if first:  # a whole request first: the slow head is the connection's second
            await wire.send(first)
            assert (await wire.answer()) is not None
        started = time.perf_counter()
        await wire.send(b"POST /v4/search HTTP/1.1\r\nHost: memoryd\r\n")
        reading = asyncio.create_task(wire.answer(within=10.0))
        for _ in range(40):
            await asyncio.wait([reading], timeout=0.2)
            if reading.done() or not await wire.send(b"X-Slow: 1\r\n"):
                break
        answer = await reading
        rest = await wire.closed()
        return time.perf_counter() - started, answer, rest
    finally:
        await wire.close()


async def test_slow_request_heads_are_cut_off_after_header_timeout(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path, header_timeout=1.0)
    async with memoryd_on_loopback(settings) as (url, _), HealthProbe(url) as probe:
        results = await asyncio.gather(*(slow_head(url) for _ in range(30)))
        # The same on a kept-alive connection, counted from the next head's first byte.
        again = await slow_head(url, first=request_head("GET", "/health", {}))
    print(probe.summary(), "; closed after", sorted(round(t, 2) for t, _, _ in results))
    for took, answer, rest in [*results, again]:
        assert 0.9 <= took < 2.5  # the clock starts at connect, a little before ours
        assert answer is not None
        assert answer.status == 408
        assert "header_timeout" in answer.json()["error"]
        assert rest == b""
    assert probe.slowest < HEALTH_BOUND, probe.summary()


async def test_silent_and_idle_connections_are_closed(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path, header_timeout=1.0, keepalive_timeout=2.0)
    async with memoryd_on_loopback(settings) as (url, _):
        silent = await Wire.open(url)
        started = time.perf_counter()
        try:
            assert await silent.closed() == b""  # nothing sent: closed, no answer
            assert 0.9 <= time.perf_counter() - started < 2.5
        finally:
            await silent.close()
        idle = await Wire.open(url)
        try:
            await idle.send(request_head("GET", "/health", {}))
            assert (await idle.answer()) is not None
            started = time.perf_counter()
            assert await idle.closed() == b""  # idle after an answer: keepalive_timeout
            assert 1.9 <= time.perf_counter() - started < 3.5
        finally:
            await idle.close()


async def slow_body(url: str, key: str | None) -> tuple[float, Answer | None]:
    """A 200-byte body sent one byte per 0.2 s, until the server answers."""
    headers = {"Content-Type": "application/json", "Content-Length": "200"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    wire = await Wire.open(url)
    try:
        started = time.perf_counter()
        await wire.send(request_head("POST", "/v4/search", headers))
        reading = asyncio.create_task(wire.answer(within=10.0))
        for _ in range(200):
            if not await wire.send(b" "):
                break
            await asyncio.wait([reading], timeout=0.2)
            if reading.done():
                break
        answer = await reading
        return time.perf_counter() - started, answer
    finally:
        await wire.close()


async def test_a_slow_body_is_408_after_body_timeout(tmp_path: Path, make_key: MakeKey) -> None:
    key = await make_key()
    settings = hostile_settings(tmp_path, body_timeout=1.0)
    async with memoryd_on_loopback(settings) as (url, _), HealthProbe(url) as probe:
        results = await asyncio.gather(*(slow_body(url, key) for _ in range(5)))
        stranger = await slow_body(url, None)
    print(probe.summary(), "; 408 after", [round(t, 2) for t, _ in results])
    for took, answer in results:
        assert answer is not None
        assert answer.status == 408
        assert 0.9 <= took < 2.5
        error = answer.json()
        assert "body_timeout" in error["error"]
        assert error["details"]["timeoutSeconds"] == 1.0
    took, answer = stranger  # no key: 401 at once, the body is never waited for
    assert answer is not None
    assert answer.status == 401
    assert took < 0.5
    assert probe.slowest < HEALTH_BOUND, probe.summary()


# --- the connection cap ----------------------------------------------------------------------


async def wait_for(condition: Any, within: float = 5.0) -> float:
    """Poll ``condition()`` every 20 ms until true; the seconds it took."""
    started = time.perf_counter()
    for _ in range(int(within / 0.02)):
        if condition():
            return time.perf_counter() - started
        await asyncio.sleep(0.02)
    raise AssertionError(f"not true within {within} s")


async def test_connections_past_the_cap_get_503_and_health_answers_once_they_go(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = hostile_settings(tmp_path, max_connections=8)
    async with memoryd_on_loopback(settings) as (url, runner):
        assert runner.server is not None
        holders = [await Wire.open(url) for _ in range(8)]
        try:
            await wait_for(lambda: len(runner.server.connections) == 8)  # type: ignore[union-attr]
            for _ in range(5):
                extra = await Wire.open(url)
                try:
                    refusal = await extra.answer()
                    assert refusal is not None
                    assert refusal.status == 503
                    assert "max_connections" in refusal.json()["error"]
                    assert refusal.headers["connection"] == "close"
                    assert await extra.closed() == b""
                finally:
                    await extra.close()
        finally:
            for holder in holders:
                await holder.close()
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1  # one warning a minute, not one per refusal
        assert "max_connections" in warnings[0].getMessage()

        async with HealthProbe(url, every=0.02, most=50) as probe:
            await wait_for(lambda: 200 in probe.statuses, within=1.0)
    print(probe.summary(), "; statuses", probe.statuses)
    assert probe.statuses[-1] == 200
    answered = [t for t, status in zip(probe.times, probe.statuses, strict=True) if status == 200]
    assert max(answered) < HEALTH_BOUND, probe.summary()


# --- client errors in the log ----------------------------------------------------------------


async def test_client_errors_are_logged_once_per_connection_without_traceback(
    tmp_path: Path, make_key: MakeKey, caplog: pytest.LogCaptureFixture
) -> None:
    key = await make_key()
    bearer = {"Authorization": f"Bearer {key}"}
    chunked = {"Transfer-Encoding": "chunked", "Content-Type": "application/json"}
    partial = {"Content-Length": "1000", "Content-Type": "application/json"}
    search_with_key = request_head("POST", "/v4/search", bearer | chunked)
    search_no_key = request_head("POST", "/v4/search", chunked)
    partial_with_key = request_head("POST", "/v4/search", bearer | partial) + b'{"q"'
    partial_no_key = request_head("POST", "/v4/search", partial) + b'{"q"'
    scenarios: dict[str, tuple[list[bytes], int | None]] = {
        "bad method": ([b"GARBAGE / HTTP/1.1\r\n\r\n"], 400),
        "bad header": ([b"GET /health HTTP/1.1\r\nHost: m\r\nBad Header\r\n\r\n"], 400),
        "long line": ([b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n"], 400),
        "bad chunk, with a key": ([search_with_key + b"zz\r\n"], 400),
        "bad chunk, no key": ([search_no_key + b"zz\r\n"], 400),
        "bad chunk later, with a key": ([search_with_key, b"zz\r\n"], None),
        "bad chunk later, no key": ([search_no_key, b"zz\r\n"], 401),
        "leaves mid-body, with a key": ([partial_with_key], None),
        "leaves mid-body, no key": ([partial_no_key], None),
    }
    caplog.set_level(logging.DEBUG)
    async with memoryd_on_loopback(hostile_settings(tmp_path)) as (url, runner):
        for name, (parts, status) in scenarios.items():
            caplog.clear()
            wire = await Wire.open(url)
            try:
                for part in parts:
                    await wire.send(part)
                    await asyncio.sleep(0.1)
                if status is not None:
                    answer = await wire.answer()
                    assert answer is not None
                    assert answer.status == status, name
                    assert "error" in answer.json()
            finally:
                await wire.close()
            await wait_for(lambda: not runner.server.connections)  # type: ignore[union-attr]
            records = [r for r in caplog.records if r.name.split(".")[0] in {"aiohttp", "memoryd"}]
            assert not [r for r in records if r.levelno >= logging.WARNING], (name, records)
            assert not [r for r in records if r.exc_info or r.exc_text], (name, records)
            assert len(records) <= 1, (name, [r.getMessage() for r in records])


async def test_limits_must_be_positive(tmp_path: Path) -> None:
    for name in ("header_timeout", "keepalive_timeout", "max_connections"):
        with pytest.raises(ConfigurationError, match=name) as caught:
            bootstrap.server_limits(make_settings(tmp_path, **{name: 0}))
        assert caught.value.details == {"setting": name}
    with pytest.raises(ConfigurationError, match="body_timeout"):
        await bootstrap.create_app(make_settings(tmp_path, body_timeout=-1))
