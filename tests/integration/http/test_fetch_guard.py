"""The fetch guard (``memoryd.adapters._fetch_guard``) against servers on 127.0.0.1 only.

Names resolve through ``FakeResolver``; the ``Loopback`` connector factory
plays each vetted public address with a server on 127.0.0.1 and fails the test
if a connection would go anywhere else. URLs that must be refused get the
``never`` factory (or a ``Loopback`` with a budget), so a guard that wrongly
let one through fails instead of connecting.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import time
from collections.abc import Awaitable, Callable
from ipaddress import ip_address
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from memoryd.adapters._fetch_guard import (
    ConnectorFactory,
    Fetched,
    FetchGuard,
    FetchPolicy,
    FetchRefused,
    refusal,
)
from memoryd.core.errors import ConfigurationError
from memoryd.plugins.context import PluginContext
from memoryd.settings import Settings, load_settings

from .fetch_helpers import PUBLIC, PUBLIC_2, FakeResolver, Loopback, never

MakeServer = Callable[[web.Application], Awaitable[TestServer]]

#: Every refused address class: (address, a word the reason must contain).
REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("169.254.1.1", "link-local"),
    ("0.0.0.0", "this-network"),
    ("0.1.2.3", "this-network"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("192.0.0.8", "IETF"),
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("100.100.100.200", "metadata"),
    ("168.63.129.16", "metadata"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("fd00:ec2::254", "metadata"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1, a loopback"),
    ("::ffff:10.1.2.3", "IPv4-mapped form of 10.1.2.3, a private"),
    ("::ffff:169.254.169.254", "IPv4-mapped form of 169.254.169.254, a cloud metadata"),
    ("::ffff:100.64.0.1", "carrier-grade NAT"),
    ("64:ff9b::7f00:1", "NAT64 form of 127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254"),
    ("64:ff9b::c0a8:101", "NAT64 form of 192.168.1.1"),
    ("64:ff9b:1::a00:1", "local-use NAT64"),
    ("2002:7f00:1::", "6to4 form of 127.0.0.1"),
    ("2002:a9fe:a9fe::1", "6to4 form of 169.254.169.254"),
    ("2001:0:404:404::80ff:fffe", "Teredo (client) form of 127.0.0.1"),
]

#: Odd spellings of refused addresses in URLs: (URL, a word the reason must contain).
SPELLINGS = [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.0.0.1./", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://0X7F000001/", "loopback"),
    ("http://017700000001/", "loopback"),
    ("http://0x7f.1/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://0x7f.0.0.1/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://127.0.1/", "loopback"),
    ("http://127.000.000.001/", "loopback"),
    ("http://2852039166/", "metadata"),
    ("http://0xa9.0xfe.0xa9.0xfe/", "metadata"),
    ("http://0251.0376.0251.0376/", "metadata"),
    ("http://169.254.43518/", "metadata"),
    ("http://0/", "this-network"),
    ("http://0x/", "this-network"),
    ("http://167772161/", "private"),
    ("http://[::1]/", "loopback"),
    ("http://[0::1]/", "loopback"),
    ("http://[0000:0000:0000:0000:0000:0000:0000:0001]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:7f00:1]/", "loopback"),
    ("http://[0:0:0:0:0:ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:a9fe:a9fe]/", "metadata"),
    ("http://[64:ff9b::127.0.0.1]/", "NAT64"),
    ("http://[::1%25lo]/", "zone"),
    ("http://[fe80::1%25eth0]/", "zone"),
    ("http://[FD00:EC2::254]/", "metadata"),
    ("http://localhost/", "local"),
    ("http://LOCALHOST./", "local"),
    ("http://app.localhost/", "local"),
    ("http://metadata.google.internal/", "metadata"),
    ("http://1572395042/", "spelt oddly"),  # 93.184.216.34: public, but not written a.b.c.d
    ("http://0x5d.0xb8.0xd8.0x22/", "spelt oddly"),
    ("http://256.0.0.1/", "not a valid IPv4"),
    ("http://1.2.3.4.5/", "not a valid IPv4"),
    ("http://example.123/", "not a valid IPv4"),
    ("http://ex%41mple.test/", "not a valid host"),
]


def url_of(address: str, path: str = "/") -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}{path}"


def guard(
    resolver: FakeResolver | None = None, connector: ConnectorFactory = never, **policy: Any
) -> FetchGuard:
    return FetchGuard(
        policy=FetchPolicy(**policy), resolver=resolver or FakeResolver({}), connector=connector
    )


async def refused(g: FetchGuard, url: str) -> str:
    with pytest.raises(FetchRefused) as caught:
        await g.fetch(url)
    return caught.value.reason


@functools.cache
def gzip_bomb() -> bytes:
    return gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)


@pytest.fixture
async def origin(aiohttp_server: MakeServer) -> TestServer:
    """The server that plays example.test (PUBLIC), on 127.0.0.1."""

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="hello", content_type="text/plain")

    async def redirect(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        raise web.HTTPFound("/ok" if n == 0 else f"/redirect/{n - 1}")

    async def to(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["url"])

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]))

    async def bomb(_: web.Request) -> web.Response:
        return web.Response(body=gzip_bomb(), headers={"Content-Encoding": "gzip"})

    async def big(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * (2 * 1024 * 1024))

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"y" * 65536)
        await response.write_eof()
        return response

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(50):
            await response.write(b"z")
            await asyncio.sleep(0.1)
        return response

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/redirect/{n}", redirect)
    app.router.add_get("/to", to)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/bomb", bomb)
    app.router.add_get("/big", big)
    app.router.add_get("/stream", stream)
    app.router.add_get("/slow", slow)
    app.router.add_get("/drip", drip)
    return await aiohttp_server(app)


@pytest.fixture
def resolver() -> FakeResolver:
    return FakeResolver({"example.test": [[PUBLIC]], "cdn.example.test": [[PUBLIC]]})


@pytest.fixture
def loopback(origin: TestServer) -> Loopback:
    assert origin.port is not None
    return Loopback(routes={PUBLIC: origin.port})


# --- a fetch that passes ---------------------------------------------------------------------


async def test_a_public_name_is_fetched_after_vetting_its_public_answer(
    resolver: FakeResolver, loopback: Loopback
) -> None:
    fetched = await guard(resolver, loopback).fetch("http://example.test/ok")
    assert fetched == Fetched(b"hello", "text/plain", "http://example.test/ok")
    assert resolver.calls == [("example.test", 80)]
    assert loopback.seen == [[PUBLIC]]  # the connection went to the vetted answer only
    assert not loopback.violations


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "1.1.1.1", "8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ip_address(address)) is None


@pytest.mark.parametrize(
    "address", ["::ffff:93.184.216.34", "64:ff9b::5db8:d822", "2002:5db8:d822::"]
)
def test_embeddings_of_public_addresses_pass(address: str) -> None:
    assert refusal(ip_address(address)) is None


# --- address classes, as literals and as names -----------------------------------------------


@pytest.mark.parametrize(("address", "word"), REFUSED)
async def test_every_refused_class_as_a_literal(address: str, word: str) -> None:
    assert word in await refused(guard(), url_of(address))


@pytest.mark.parametrize(("address", "word"), REFUSED)
async def test_every_refused_class_behind_a_name(address: str, word: str) -> None:
    resolver = FakeResolver({"bad.test": [[address]]})
    reason = await refused(guard(resolver), "http://bad.test/")
    assert reason.startswith("bad.test resolves to")
    assert word in reason
    assert resolver.calls == [("bad.test", 80)]


@pytest.mark.parametrize(("address", "word"), REFUSED)
async def test_one_bad_answer_among_good_ones_refuses_the_name(address: str, word: str) -> None:
    for answers in ([PUBLIC, address], [address, PUBLIC]):
        resolver = FakeResolver({"mixed.test": [answers]})
        assert word in await refused(guard(resolver), "http://mixed.test/")


@pytest.mark.parametrize(("url", "word"), SPELLINGS)
async def test_every_spelling_of_a_literal(url: str, word: str) -> None:
    assert word in await refused(guard(), url)


@pytest.mark.parametrize("name", ["BAD.test", "bad.test.", "Bad.Test."])
async def test_names_are_refused_whatever_their_case_or_trailing_dot(name: str) -> None:
    resolver = FakeResolver({"bad.test": [["127.0.0.1"]]})
    assert "loopback" in await refused(guard(resolver), f"http://{name}/")
    assert resolver.calls == [("bad.test", 80)]  # looked up as one normal name


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    assert "could not be resolved" in await refused(guard(), "http://nowhere.test/")


# --- DNS rebinding ---------------------------------------------------------------------------


async def test_dns_rebinding_cannot_reach_the_second_answer(
    aiohttp_server: MakeServer, origin: TestServer, loopback: Loopback
) -> None:
    hits: list[str] = []

    async def evil(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="internal secrets")

    app = web.Application()
    app.router.add_get("/{tail:.*}", evil)
    inside = await aiohttp_server(app)
    # A public answer first, then the inside server on 127.0.0.1 for every later lookup.
    resolver = FakeResolver({"example.test": [[PUBLIC], [("127.0.0.1", inside.port or 0)]]})
    assert (await guard(resolver, loopback).fetch("http://example.test/ok")).data == b"hello"
    assert resolver.calls == [("example.test", 80)]  # looked up once, by the guard
    assert loopback.seen == [[PUBLIC]]  # the connection asked for the vetted answer only
    assert not hits


async def test_each_redirect_hop_is_resolved_and_vetted_again(
    resolver: FakeResolver, loopback: Loopback
) -> None:
    resolver.table = {"example.test": [[PUBLIC], ["127.0.0.1"]]}
    g = guard(resolver, Loopback(routes=loopback.routes, budget=1))
    reason = await refused(g, "http://example.test/redirect/1")
    assert reason.startswith("redirect 1 to http://example.test/redirect/0: ")
    assert "127.0.0.1, a loopback address" in reason
    assert resolver.calls == [("example.test", 80), ("example.test", 80)]


# --- redirects -------------------------------------------------------------------------------


async def test_three_redirects_are_followed_and_a_fourth_is_refused(
    resolver: FakeResolver, loopback: Loopback
) -> None:
    g = guard(resolver, loopback)
    fetched = await g.fetch("http://example.test/redirect/2")  # 3 redirects
    assert (fetched.data, fetched.final_url) == (b"hello", "http://example.test/ok")
    assert "more than 3 redirects" in await refused(g, "http://example.test/redirect/3")


@pytest.mark.parametrize(("address", "word"), REFUSED)
async def test_a_redirect_to_a_refused_literal_is_refused(
    resolver: FakeResolver, loopback: Loopback, address: str, word: str
) -> None:
    g = guard(resolver, Loopback(routes=loopback.routes, budget=1))
    reason = await refused(g, f"http://example.test/to?url={url_of(address, '/x')}")
    assert reason.startswith("redirect 1 to ")
    assert word in reason


@pytest.mark.parametrize(("address", "word"), REFUSED)
async def test_a_redirect_to_a_name_of_a_refused_address_is_refused(
    resolver: FakeResolver, loopback: Loopback, address: str, word: str
) -> None:
    resolver.table = {**resolver.table, "inside.test": [[address]]}
    g = guard(resolver, Loopback(routes=loopback.routes, budget=1))
    reason = await refused(g, "http://example.test/to?url=http://inside.test/x")
    assert "inside.test resolves to" in reason
    assert word in reason


@pytest.mark.parametrize(
    ("target", "word"),
    [
        ("http://0x7f.1/", "loopback"),
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://localhost:{port}/ok", "local"),
        ("http://127.0.0.1:{port}/ok", "loopback"),
        ("file:///etc/passwd", "http"),
        ("ftp://example.test/", "http"),
        ("http://user:secret@example.test/ok", "credentials"),
        ("http://example.test:8080/ok", "port 8080"),
    ],
)
async def test_redirects_are_checked_like_the_first_url(
    resolver: FakeResolver, loopback: Loopback, origin: TestServer, target: str, word: str
) -> None:
    g = guard(resolver, Loopback(routes=loopback.routes, budget=1))
    reason = await refused(g, "http://example.test/to?url=" + target.format(port=origin.port))
    assert word in reason
    assert "secret" not in reason


async def test_a_relative_redirect_stays_on_the_vetted_host(
    resolver: FakeResolver, loopback: Loopback
) -> None:
    fetched = await guard(resolver, loopback).fetch("http://example.test/to?url=/ok")
    assert fetched.final_url == "http://example.test/ok"
    assert loopback.seen == [[PUBLIC], [PUBLIC]]


# --- the URL itself --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://user:secret@example.test/ok",
        "http://user@example.test/ok",
        "http://:secret@example.test/ok",
        "https://user%40x:secret@example.test/ok",
    ],
)
async def test_credentials_are_refused_and_never_shown(url: str) -> None:
    with pytest.raises(FetchRefused) as caught:
        await guard().fetch(url)
    assert "credentials" in caught.value.reason
    assert "secret" not in str(caught.value)
    assert "secret" not in repr(caught.value.details)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.test/",
        "file:///etc/passwd",
        "gopher://example.test/",
        "data:text/plain,hi",
        "javascript:alert(1)",
        "example.test/ok",
        "//example.test/ok",
        "",
    ],
)
async def test_other_schemes_are_refused(url: str) -> None:
    assert "http" in await refused(guard(), url)


@pytest.mark.parametrize("port", [0, 22, 6379, 8080, 8443, 65535])
async def test_ports_other_than_80_and_443_are_refused(resolver: FakeResolver, port: int) -> None:
    assert f"port {port}" in await refused(guard(resolver), f"http://example.test:{port}/ok")
    assert resolver.calls == []  # refused before any lookup


async def test_an_allowed_port_is_fetched(resolver: FakeResolver, loopback: Loopback) -> None:
    g = guard(resolver, loopback, allowed_ports=frozenset({8080}))
    assert (await g.fetch("http://example.test:8080/ok")).data == b"hello"
    assert resolver.calls == [("example.test", 8080)]


async def test_the_domain_allowlist_matches_on_label_boundaries(
    resolver: FakeResolver, loopback: Loopback
) -> None:
    resolver.table = {
        **resolver.table,
        "badexample.test": [[PUBLIC]],
        "example.test.evil.test": [[PUBLIC]],
    }
    g = guard(resolver, loopback, allowed_domains=("Example.TEST.",))
    assert (await g.fetch("http://example.test/ok")).data == b"hello"
    assert (await g.fetch("http://cdn.example.test/ok")).data == b"hello"
    for url in ["http://badexample.test/ok", "http://example.test.evil.test/ok"]:
        assert "fetch_allowed_domains" in await refused(g, url)
    assert [name for name, _ in resolver.calls] == ["example.test", "cdn.example.test"]


# --- what comes back -------------------------------------------------------------------------


async def test_a_gzip_bomb_stops_at_the_byte_cap(
    resolver: FakeResolver, loopback: Loopback
) -> None:
    gzip_bomb()  # built before timing
    started = time.monotonic()
    reason = await refused(
        guard(resolver, loopback, max_bytes=1024 * 1024), "http://example.test/bomb"
    )
    assert "larger than 1048576 bytes (fetch_max_bytes)" in reason
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("path", ["/big", "/stream"])
async def test_a_body_past_the_cap_is_refused(
    resolver: FakeResolver, loopback: Loopback, path: str
) -> None:
    g = guard(resolver, loopback, max_bytes=1024 * 1024)
    assert "fetch_max_bytes" in await refused(g, f"http://example.test{path}")
    roomy = guard(resolver, loopback, max_bytes=8 * 1024 * 1024)
    assert len((await roomy.fetch(f"http://example.test{path}")).data) >= 2 * 1024 * 1024


@pytest.mark.parametrize("path", ["/slow", "/drip"])
async def test_a_slow_server_is_cut_off(
    resolver: FakeResolver, loopback: Loopback, path: str
) -> None:
    started = time.monotonic()
    reason = await refused(
        guard(resolver, loopback, total_timeout=0.5), f"http://example.test{path}"
    )
    assert "took longer than 0.5 s" in reason
    assert time.monotonic() - started < 2


async def test_an_error_status_is_refused(resolver: FakeResolver, loopback: Loopback) -> None:
    assert "answered 404" in await refused(
        guard(resolver, loopback), "http://example.test/status/404"
    )


async def test_proxy_variables_are_ignored(
    aiohttp_server: MakeServer,
    resolver: FakeResolver,
    loopback: Loopback,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hits: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        hits.append(str(request.url))
        return web.Response(text="via proxy")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    server = await aiohttp_server(app)
    for name in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"]:
        monkeypatch.setenv(name, f"http://127.0.0.1:{server.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert (await guard(resolver, loopback).fetch("http://example.test/ok")).data == b"hello"
    assert not hits


# --- settings and the plugin context ---------------------------------------------------------


def test_fetching_is_off_by_default() -> None:
    settings = load_settings(env={})
    assert settings.fetch_urls is False
    assert PluginContext(plugin="p", settings=settings, config=None).fetch is None


def test_the_settings_make_the_policy() -> None:
    settings = load_settings(
        env={
            "MEMORYD_FETCH_URLS": "true",
            "MEMORYD_FETCH_ALLOWED_DOMAINS": "example.com, *.cdn.test",
            "MEMORYD_FETCH_ALLOWED_PORTS": "8080,8443",
            "MEMORYD_FETCH_MAX_BYTES": "1000",
        }
    )
    policy = FetchPolicy.from_settings(settings)
    assert policy == FetchPolicy(
        allowed_domains=("example.com", "cdn.test"),
        allowed_ports=frozenset({8080, 8443}),
        max_bytes=1000,
    )
    assert (policy.connect_timeout, policy.total_timeout, policy.max_redirects) == (3, 10, 3)
    assert callable(PluginContext(plugin="p", settings=settings, config=None).fetch)


@pytest.mark.parametrize("ports", ["0", "70000", "http"])
def test_bad_ports_in_the_settings_stop_the_start(ports: str) -> None:
    with pytest.raises(ConfigurationError, match="settings"):
        load_settings(env={"MEMORYD_FETCH_ALLOWED_PORTS": ports})


def test_settings_default_is_a_plain_settings() -> None:
    assert Settings().fetch_max_bytes == 10 * 1024 * 1024


async def test_a_redirect_to_another_public_name_is_vetted_and_followed(
    aiohttp_server: MakeServer, resolver: FakeResolver, loopback: Loopback
) -> None:
    async def other(_: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG", content_type="image/png")

    app = web.Application()
    app.router.add_get("/logo.png", other)
    second = await aiohttp_server(app)
    resolver.table = {**resolver.table, "other.test": [[PUBLIC_2]]}
    g = guard(resolver, Loopback(routes={**loopback.routes, PUBLIC_2: second.port or 0}))
    fetched = await g.fetch("http://example.test/to?url=http://other.test/logo.png")
    assert fetched == Fetched(b"\x89PNG", "image/png", "http://other.test/logo.png")
    assert resolver.calls == [("example.test", 80), ("other.test", 80)]


async def test_the_allowlist_takes_international_names(
    resolver: FakeResolver, loopback: Loopback
) -> None:
    resolver.table = {"xn--bcher-kva.test": [[PUBLIC]]}
    g = guard(resolver, loopback, allowed_domains=("Bücher.test",))
    assert (await g.fetch("http://bücher.test/ok")).data == b"hello"
    assert resolver.calls == [("xn--bcher-kva.test", 80)]
