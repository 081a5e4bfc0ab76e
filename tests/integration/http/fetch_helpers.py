"""A resolver the test controls, and a connector that only ever reaches 127.0.0.1.

The guard vets public-looking answers (``PUBLIC``: never connected to); the
``Loopback`` connector factory then maps each vetted public address onto a
server on 127.0.0.1, and refuses (fails the test) anything else. It also
builds at most ``budget`` connectors, so a hop that should have been refused
before connecting fails the test instead of connecting anywhere.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from attrs import Factory, define

#: What example.test resolves to: vetted as a public address, never connected to.
PUBLIC = "93.184.216.34"
PUBLIC_2 = "93.184.216.35"

Address = str | tuple[str, int]


def answer(hostname: str, address: Address, port: int) -> ResolveResult:
    host, port = (address, port) if isinstance(address, str) else address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return ResolveResult(hostname=hostname, host=host, port=port, family=family, proto=0, flags=0)


@define
class FakeResolver(AbstractResolver):
    """Answers from ``table``: a name's rounds of addresses, one round a call (the last repeats)."""

    table: Mapping[str, Sequence[Sequence[Address]]]
    calls: list[tuple[str, int]] = Factory(list)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        asked = sum(1 for name, _ in self.calls if name == host)
        self.calls.append((host, port))
        rounds = self.table.get(host)
        if not rounds:
            raise OSError(f"unknown name {host}")
        return [answer(host, a, port) for a in rounds[min(asked, len(rounds) - 1)]]

    async def close(self) -> None:
        return None


@define
class Loopback:
    """A connector factory for the guard whose connections go to 127.0.0.1 only."""

    #: Vetted public address -> the port of a server on 127.0.0.1 that plays it.
    routes: Mapping[str, int] = Factory(dict)
    #: Connectors it builds at most; one more fails the test.
    budget: int = 10
    built: int = 0
    #: The addresses the guard's resolver handed each connection, in order.
    seen: list[list[str]] = Factory(list)
    #: Addresses a connection was about to go to that are not 127.0.0.1 (must stay empty).
    violations: list[str] = Factory(list)

    def __call__(self, resolver: AbstractResolver) -> aiohttp.BaseConnector:
        if self.built >= self.budget:
            raise AssertionError("the guard was about to connect for a URL it should refuse")
        self.built += 1
        return _LoopbackOnly(
            resolver=_ToLoopback(resolver, self), use_dns_cache=False, force_close=True
        )


class _LoopbackOnly(aiohttp.TCPConnector):
    """Sends every host through the test's mapping, IP literals included.

    aiohttp connects to an IP-literal host without asking its resolver: were the
    guard to pass a literal it should refuse, this makes it a test failure (a
    violation), never a socket to that address.
    """

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Any] | None = None
    ) -> list[ResolveResult]:
        return await self._resolver.resolve(host, port, family=self._family)


@define
class _ToLoopback(AbstractResolver):
    inner: AbstractResolver
    owner: Loopback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self.inner.resolve(host, port, family)
        self.owner.seen.append([a["host"] for a in answers])
        out = []
        for a in answers:
            if a["host"] in self.owner.routes:
                out.append(answer(host, ("127.0.0.1", self.owner.routes[a["host"]]), port))
            elif a["host"] == "127.0.0.1":
                out.append(answer(host, ("127.0.0.1", a["port"]), port))
            else:
                self.owner.violations.append(a["host"])
                raise OSError(f"the test refuses to connect to {a['host']}")
        return out

    async def close(self) -> None:
        return None


def never(resolver: AbstractResolver) -> aiohttp.BaseConnector:
    """A connector factory for URLs that must be refused before any connection."""
    raise AssertionError("the guard was about to connect for a URL it should refuse")
