"""Fetching a URL a client gave, without letting it reach inside the network (docs/security.md).

Off unless ``fetch_urls`` is on. :class:`FetchGuard` checks the URL (scheme,
credentials, port, domain allowlist), resolves its host once and refuses it
if any answer is not a public address (:func:`refusal`), then lets aiohttp
connect only to those vetted answers: the connector's resolver hands them
back and DNS caching is off, so a second, different answer (DNS rebinding)
is never asked for. IP literals, odd spellings included (``2130706433``,
``0x7f.1``), are checked here, because aiohttp's resolver never sees them.
Redirects are followed by hand, each hop checked again; time and the
decoded bytes are capped while streaming.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from attrs import define, field, frozen
from yarl import URL

from memoryd import __version__
from memoryd.adapters._outbound import without_user
from memoryd.core.errors import MemorydError
from memoryd.settings import Settings, has_credentials

IPAddress = IPv4Address | IPv6Address
#: ``connector(resolver)``: the connector for one hop, which must resolve through ``resolver``
#: (it answers only the vetted addresses). Tests map those onto servers on 127.0.0.1.
ConnectorFactory = Callable[[AbstractResolver], aiohttp.BaseConnector]

DEFAULT_PORTS = frozenset({80, 443})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024

#: Cloud metadata and platform services (some are public addresses: Azure's WireServer).
METADATA = frozenset(
    ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OCI, OpenStack, DigitalOcean ...
        "169.254.169.253",  # AWS DNS
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer
        "192.0.0.192",  # Oracle Cloud (legacy)
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS DNS over IPv6
        "fd20:ce::254",  # GCP metadata over IPv6
    )
)
#: Names refused before any lookup (RFC 6761 ``localhost``, metadata names).
_REFUSED_NAMES = ("localhost", "metadata.google.internal", "metadata", "instance-data")

_V4 = [
    ("this-network (0.0.0.0/8)", "0.0.0.0/8"),
    ("private (RFC 1918)", "10.0.0.0/8"),
    ("carrier-grade NAT (100.64.0.0/10)", "100.64.0.0/10"),
    ("loopback", "127.0.0.0/8"),
    ("link-local", "169.254.0.0/16"),
    ("private (RFC 1918)", "172.16.0.0/12"),
    ("IETF protocol assignment (192.0.0.0/24)", "192.0.0.0/24"),
    ("documentation", "192.0.2.0/24"),
    ("6to4 relay anycast", "192.88.99.0/24"),
    ("private (RFC 1918)", "192.168.0.0/16"),
    ("benchmarking", "198.18.0.0/15"),
    ("documentation", "198.51.100.0/24"),
    ("documentation", "203.0.113.0/24"),
    ("multicast", "224.0.0.0/4"),
    ("broadcast", "255.255.255.255/32"),
    ("reserved (240.0.0.0/4)", "240.0.0.0/4"),
]
_V6 = [
    ("unspecified", "::/128"),
    ("loopback", "::1/128"),
    ("IPv4-compatible (deprecated)", "::/96"),
    ("IPv4-translated", "::ffff:0:0:0/96"),
    ("local-use NAT64 (64:ff9b:1::/48)", "64:ff9b:1::/48"),
    ("reserved (::/8)", "::/8"),
    ("discard-only", "100::/64"),
    ("IETF protocol assignment (2001::/23)", "2001::/23"),
    ("documentation", "2001:db8::/32"),
    ("documentation", "3fff::/20"),
    ("SRv6 SIDs", "5f00::/16"),
    ("private (unique local, fc00::/7)", "fc00::/7"),
    ("link-local", "fe80::/10"),
    ("site-local (deprecated)", "fec0::/10"),
    ("multicast", "ff00::/8"),
]
_V4_NETS = [(name, IPv4Network(net)) for name, net in _V4]
_V6_NETS = [(name, IPv6Network(net)) for name, net in _V6]
_NAT64 = IPv6Network("64:ff9b::/96")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` may not be fetched from (``"a loopback address"``), or None if public.

    An IPv6 address that embeds an IPv4 one (IPv4-mapped, NAT64, 6to4, Teredo)
    is refused when the embedded address would be.
    """
    if address in METADATA:
        return "a cloud metadata address"
    if isinstance(address, IPv6Address):
        embedded = _embedded(address)
        for form, inner in embedded:
            why = refusal(inner)
            if why is not None:
                return f"the {form} form of {inner}, {why}"
        if embedded:
            return None
        nets: Sequence[tuple[str, IPv4Network | IPv6Network]] = _V6_NETS
    else:
        nets = _V4_NETS
    for name, net in nets:
        if address in net:
            return f"{'an' if name[0] in 'aeiouIU' else 'a'} {name} address"
    if not address.is_global:
        return "not a public address"
    return None


def _embedded(address: IPv6Address) -> list[tuple[str, IPv4Address]]:
    if address.ipv4_mapped is not None:
        return [("IPv4-mapped", address.ipv4_mapped)]
    if address in _NAT64:
        return [("NAT64", IPv4Address(int(address) & 0xFFFFFFFF))]
    if address.sixtofour is not None:
        return [("6to4", address.sixtofour)]
    if address.teredo is not None:
        server, client = address.teredo
        return [("Teredo (server)", server), ("Teredo (client)", client)]
    return []


class FetchRefused(MemorydError):
    """A URL was not fetched; ``reason`` says why (safe to show: no credentials)."""

    default_message = "The URL was not fetched"

    def __init__(self, reason: str, *, url: str) -> None:
        shown = _shown(url)
        super().__init__(f"{shown} was not fetched: {reason}", details={"url": shown})
        self.reason = reason
        self.url = shown


def _shown(url: str) -> str:
    try:
        text = without_user(url)
    except ValueError:
        text = "the URL"
    return text if len(text) <= 200 else text[:200] + "..."


class _Refused(Exception):
    """A check failed (inside the guard; :meth:`FetchGuard.fetch` raises FetchRefused)."""


@frozen
class Fetched:
    """What a fetch returned: the decoded body, its media type and the last hop's URL."""

    data: bytes = field(repr=lambda d: f"<{len(d)} bytes>")
    content_type: str
    final_url: str


#: ``await fetch(url)``: what :class:`PluginContext.fetch <memoryd.plugins.context.PluginContext>`
#: offers part handlers (:meth:`FetchGuard.fetch`).
Fetch = Callable[[str], Awaitable[Fetched]]


def _domains(domains: Sequence[str]) -> tuple[str, ...]:
    """Each domain as hosts are compared: lower case, IDNA-encoded, no ``*.`` or dots around."""
    bare = (d.strip().lower().removeprefix("*.").strip(".") for d in domains)
    return tuple(_idna(d) for d in bare if d)


def _idna(domain: str) -> str:
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain  # matches no host: hosts arrive IDNA-encoded


@frozen(kw_only=True)
class FetchPolicy:
    #: Domains that may be fetched from (each with its subdomains); empty: any.
    allowed_domains: tuple[str, ...] = field(default=(), converter=_domains)
    #: Ports allowed beside 80 and 443.
    allowed_ports: frozenset[int] = frozenset()
    #: The most bytes of a decoded body.
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 3
    connect_timeout: float = 3.0
    #: Seconds for the whole fetch, lookups and redirects included.
    total_timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        return cls(
            allowed_domains=settings.fetch_allowed_domains,
            allowed_ports=frozenset(settings.fetch_allowed_ports),
            max_bytes=settings.fetch_max_bytes,
        )


def direct_connector(resolver: AbstractResolver) -> aiohttp.BaseConnector:
    """The real connector: resolves only through ``resolver``, no DNS cache, no pooling."""
    return aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False, force_close=True)


@define
class _Pinned(AbstractResolver):
    """Answers the vetted addresses for the vetted host, and nothing else."""

    host: str
    answers: list[ResolveResult]

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if _normal_host(host) != self.host:
            raise OSError(f"{host} was not vetted")
        return list(self.answers)

    async def close(self) -> None:
        return None


@define
class FetchGuard:
    """Fetches http(s) URLs that pass the checks (module docstring); see :meth:`fetch`."""

    policy: FetchPolicy = field(factory=FetchPolicy)
    #: Resolves host names (default: the system's, through getaddrinfo in a thread).
    resolver: AbstractResolver | None = None
    connector: ConnectorFactory = direct_connector

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchGuard:
        return cls(policy=FetchPolicy.from_settings(settings))

    async def fetch(self, url: str) -> Fetched:
        """``url``'s body, decoded; raises :class:`FetchRefused` saying why not."""
        policy = self.policy
        try:
            async with asyncio.timeout(policy.total_timeout):
                return await self._follow(url)
        except _Refused as exc:
            raise FetchRefused(str(exc), url=url) from None
        except aiohttp.ConnectionTimeoutError:
            reason = f"could not connect within {policy.connect_timeout:g} s"
            raise FetchRefused(reason, url=url) from None
        except TimeoutError:
            reason = f"took longer than {policy.total_timeout:g} s"
            raise FetchRefused(reason, url=url) from None
        except aiohttp.ClientError as exc:
            reason = f"the request failed ({type(exc).__name__})"
            raise FetchRefused(reason, url=url) from None

    async def _follow(self, url: str) -> Fetched:
        target = url
        for hop in range(self.policy.max_redirects + 1):
            try:
                parsed, resolver = await self._vet(target)
            except _Refused as exc:
                reason = f"redirect {hop} to {_shown(target)}: {exc}" if hop else str(exc)
                raise _Refused(reason) from None
            async with (
                self._session(resolver) as session,
                session.get(parsed, allow_redirects=False) as response,
            ):
                if response.status in _REDIRECTS:
                    target = _location(parsed, response)
                    continue
                if not 200 <= response.status < 300:
                    raise _Refused(f"the server answered {response.status}")
                data = await _read(response, self.policy.max_bytes)
                return Fetched(data, response.content_type, str(parsed))
        raise _Refused(f"more than {self.policy.max_redirects} redirects")

    def _session(self, resolver: AbstractResolver) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=self.connector(resolver),
            trust_env=False,  # no HTTP(S)_PROXY: the proxy would connect where it likes
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
            headers={"User-Agent": f"memoryd/{__version__}", "Accept": "*/*"},
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=self.policy.connect_timeout,
                sock_connect=self.policy.connect_timeout,
            ),
        )

    async def _vet(self, url: str) -> tuple[URL, AbstractResolver]:
        """The URL to request and the resolver its connector must use; _Refused if it may not."""
        policy = self.policy
        try:
            parsed = URL(url)
            port = parsed.port
        except (ValueError, TypeError):
            raise _Refused("it is not a valid URL") from None
        if parsed.scheme not in {"http", "https"} or not parsed.is_absolute():
            raise _Refused("only absolute http:// and https:// URLs are fetched")
        if parsed.raw_user is not None or parsed.raw_password is not None or has_credentials(url):
            raise _Refused("URLs with credentials (user:password@) are not fetched")
        host, literal = _host(parsed.raw_host or "")
        if port is None or (port not in DEFAULT_PORTS and port not in policy.allowed_ports):
            raise _Refused(f"port {port} is not allowed (80, 443 and fetch_allowed_ports are)")
        if policy.allowed_domains and not _allowed(host, policy.allowed_domains):
            raise _Refused(f"{host} is not in fetch_allowed_domains")
        if literal is not None:  # aiohttp asks the resolver only if it was written oddly (a dot)
            family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
            answers = [
                ResolveResult(
                    hostname=host, host=str(literal), port=port, family=family, proto=0, flags=0
                )
            ]
        else:
            answers = await self._resolve(host, port)
        return parsed.with_fragment(None), _Pinned(host=host, answers=answers)

    async def _resolve(self, host: str, port: int) -> list[ResolveResult]:
        resolver = self.resolver
        if resolver is None:
            resolver = self.resolver = aiohttp.ThreadedResolver()
        try:
            answers = await resolver.resolve(host, port, family=socket.AF_UNSPEC)
        except OSError as exc:
            raise _Refused(f"{host} could not be resolved ({exc})") from None
        if not answers:
            raise _Refused(f"{host} has no addresses")
        for answer in answers:
            try:
                address = ip_address(answer["host"].partition("%")[0])
            except ValueError:
                raise _Refused(f"{host} resolved to a non-address: {answer['host']!r}") from None
            why = refusal(address)
            if why is not None:
                raise _Refused(f"{host} resolves to {address}, {why}")
        return answers


def _normal_host(host: str) -> str:
    return host.lower().removesuffix(".")


def _host(raw: str) -> tuple[str, IPAddress | None]:
    """The host, normalised, and its address if it is an IP literal; _Refused if it may not be."""
    host = _normal_host(raw.strip("[]"))
    if not host or host.endswith("."):
        raise _Refused("the URL has no valid host")
    if ":" in host:
        if "%" in host:
            raise _Refused("IPv6 zone ids (%...) are not allowed")
        try:
            v6 = IPv6Address(host)
        except ValueError:
            raise _Refused(f"{host} is not a valid IPv6 address") from None
        _check_literal(v6)
        return host, v6
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        v4 = _ipv4(labels)
        _check_literal(v4)
        if str(v4) != host:
            raise _Refused(f"{host} is {v4} spelt oddly: write IPv4 addresses as a.b.c.d")
        return host, v4
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise _Refused(f"{host!r} is not a valid host name")
    if any(host == name or host.endswith("." + name) for name in _REFUSED_NAMES):
        raise _Refused(f"{host} is a local or metadata name")
    return host, None


def _check_literal(address: IPAddress) -> None:
    why = refusal(address)
    if why is not None:
        raise _Refused(f"{address} is {why}")


def _ipv4(labels: list[str]) -> IPv4Address:
    """An IPv4 address as browsers read it: 1 to 4 parts, decimal, octal (0..) or hex (0x..)."""
    numbers = [_number(label) for label in labels]
    if len(labels) > 4 or None in numbers:
        raise _Refused(f"{'.'.join(labels)} is not a valid IPv4 address")
    *head, last = [n for n in numbers if n is not None]
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        raise _Refused(f"{'.'.join(labels)} is not a valid IPv4 address")
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return IPv4Address(value)


def _number(label: str) -> int | None:
    try:
        if label.startswith("0x"):
            return int(label[2:] or "0", 16)
        if len(label) > 1 and label.startswith("0"):
            return int(label, 8)
        return int(label, 10) if label.isdigit() else None
    except ValueError:
        return None


def _allowed(host: str, domains: Sequence[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def _location(base: URL, response: aiohttp.ClientResponse) -> str:
    location = response.headers.get("Location")
    if not location:
        raise _Refused(f"a {response.status} redirect without a Location")
    try:
        return str(base.join(URL(location)))
    except ValueError:
        raise _Refused("a redirect to an invalid URL") from None


async def _read(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The decoded body, stopped as soon as it passes ``limit`` bytes (a gzip bomb stops there)."""
    too_big = f"the body is larger than {limit} bytes (fetch_max_bytes)"
    encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
    if not encoded and (response.content_length or 0) > limit:
        raise _Refused(too_big)
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise _Refused(too_big)
    return bytes(body)


def fetcher(settings: Settings) -> Fetch | None:
    """The guarded fetch the settings ask for, or None when ``fetch_urls`` is off."""
    return FetchGuard.from_settings(settings).fetch if settings.fetch_urls else None
