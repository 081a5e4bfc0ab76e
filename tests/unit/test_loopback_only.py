"""The run-wide loopback rule (tests/loopback_only.py), checked without reaching anything else."""

from __future__ import annotations

import socket

import pytest

from tests.loopback_only import LeavesLoopback, is_loopback


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "localhost"]
)
def test_loopback_hosts_pass(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    # Documentation ranges (RFC 5737): only classified here, never connected to.
    "host",
    ["192.0.2.1", "198.51.100.7", "::ffff:203.0.113.9", "0.0.0.0", "example.test", ""],
)
def test_other_hosts_are_outside(host: str) -> None:
    assert not is_loopback(host)


def test_names_other_than_localhost_are_not_resolved() -> None:
    with pytest.raises(LeavesLoopback):
        socket.getaddrinfo("example.test", 80)


def test_a_loopback_connection_still_opens() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
