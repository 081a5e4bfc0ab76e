"""A pytest plugin: no test process opens a connection beyond loopback, or resolves a name.

Tests reach only servers on 127.0.0.1. Resolver and SSRF tests hand out other
addresses through fake resolvers, and the fetch guard's test connector maps the
vetted ones onto 127.0.0.1 (tests/integration/http/fetch_helpers.py). This
plugin makes that a property of the whole run rather than of each test's care:
from configuration on, ``socket.connect``/``connect_ex``/``sendto`` to any
address outside loopback, and ``getaddrinfo`` of a name other than localhost,
raise ``LeavesLoopback`` before any packet is sent. (asyncio's loops and
aiohttp connect through these same calls.)
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class LeavesLoopback(ConnectionRefusedError):
    """A test was about to reach beyond loopback."""


def is_loopback(host: object) -> bool:
    """Whether ``host`` (an address or name, as ``connect`` takes it) is loopback."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.casefold() in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _checked(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(address[0]):
        raise LeavesLoopback(f"a test tried to reach {address!r}, outside loopback")


def pytest_configure(config: pytest.Config) -> None:
    connect, connect_ex, sendto = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.socket.sendto,
    )
    getaddrinfo = socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: Any) -> None:
        _checked(self, address)
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        _checked(self, address)
        return connect_ex(self, address)

    def guarded_sendto(self: socket.socket, data: Any, *rest: Any) -> int:
        _checked(self, rest[-1])
        return sendto(self, data, *rest)  # type: ignore[call-overload, no-any-return]

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not is_loopback(host):
            raise LeavesLoopback(f"a test tried to resolve {host!r}, outside loopback")
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = guarded_sendto  # type: ignore[method-assign]
    socket.getaddrinfo = guarded_getaddrinfo
