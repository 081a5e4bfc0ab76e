"""Image and file parts given as http(s) URLs: fetched through the guard only when fetch_urls is on.

Off (the default), such a part is refused, and the response says so and names
the setting. On, memoryd fetches the URL through the fetch guard and gives the
handlers its bytes. Names resolve through the test's ``FakeResolver`` and each
vetted public address is played by a server on 127.0.0.1 (``Loopback``); a
connection anywhere else fails the test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from memoryd import bootstrap
from memoryd.adapters._fetch_guard import FetchGuard, FetchPolicy
from memoryd.core.reading import FETCHING_OFF
from tests.helpers import make_settings
from tests.integration.http.fetch_helpers import PUBLIC, FakeResolver, Loopback
from tests.integration.parts import samples
from tests.integration.plugins.plugin_helpers import Client, Served, image, make_key, text

MakeServer = Callable[[web.Application], Awaitable[TestServer]]
MakeClient = Callable[[web.Application], Awaitable[Client]]


@pytest.fixture
async def files(aiohttp_server: MakeServer) -> tuple[TestServer, list[str]]:
    """The server that plays files.example.test, on 127.0.0.1, and the paths asked of it."""
    asked: list[str] = []
    report = samples.pdf(["The harbour master counts nineteen herons."])
    photo = png_described("Egrets roosting on the pier")

    async def pdf(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.Response(body=report, content_type="application/pdf")

    async def csv(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.Response(text="bird,count\nkingfisher,3\n", content_type="text/csv")

    async def png(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.Response(body=photo, content_type="image/png")

    async def sneaky(request: web.Request) -> web.Response:
        asked.append(request.path)
        raise web.HTTPFound("http://10.0.0.7/admin")

    app = web.Application()
    app.router.add_get("/report.pdf", pdf)
    app.router.add_get("/birds", csv)
    app.router.add_get("/pier", png)
    app.router.add_get("/sneaky", sneaky)
    return await aiohttp_server(app), asked


async def serve_with(
    client: MakeClient, tmp_path: Path, fetcher: object | None = None, **settings: Any
) -> Served:
    made = make_settings(tmp_path / "data", **settings)
    overrides = {"fetcher": fetcher} if fetcher is not None else None
    app = await bootstrap.create_app(made, overrides=overrides)
    return Served(app, await client(app), await make_key(made), made)


def png_described(description: str) -> bytes:
    """A small PNG whose EXIF ImageDescription is ``description``."""
    import io

    from PIL import Image

    image = Image.new("RGB", (40, 30), "white")
    exif = Image.Exif()
    exif[0x010E] = description
    out = io.BytesIO()
    image.save(out, "PNG", exif=exif)
    return out.getvalue()


def guard(server: TestServer, loopback: Loopback) -> FetchGuard:
    resolver = FakeResolver(
        {"files.example.test": [[PUBLIC]], "inside.example.test": [["127.0.0.1"]]}
    )
    return FetchGuard(policy=FetchPolicy(), resolver=resolver, connector=loopback)


async def test_with_fetching_off_a_url_part_is_refused_and_said_so(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    served = await serve_with(aiohttp_client, tmp_path)
    answer = await served.remember(
        "off",
        [
            text("The heron survey is linked."),
            image("https://files.example.test/heron.png"),
            {"type": "file", "data": "http://files.example.test/report.pdf", "mimeType": "x/y"},
        ],
    )
    assert [(p["part"], p["status"], p["reason"]) for p in answer["parts"]] == [
        (1, "refused", FETCHING_OFF),
        (2, "refused", FETCHING_OFF),
    ]
    assert "fetch_urls" in FETCHING_OFF
    (hit,) = await served.search("heron survey", limit=1)
    assert "heron survey" in hit["memory"]  # the rest of the conversation is stored


async def test_with_fetching_on_the_handlers_get_the_urls_bytes(
    aiohttp_client: MakeClient, tmp_path: Path, files: tuple[TestServer, list[str]]
) -> None:
    server, asked = files
    assert server.host == "127.0.0.1"
    loopback = Loopback(routes={PUBLIC: server.port})
    served = await serve_with(
        aiohttp_client,
        tmp_path,
        guard(server, loopback),
        fetch_urls=True,
        plugins_disabled=("image-ocr",),  # the exif handler reads the image: no OCR
    )
    answer = await served.remember(
        "on",
        [
            text("Three files from the harbour."),
            {"type": "file", "data": "http://files.example.test/report.pdf"},
            {"type": "file", "data": "http://files.example.test/birds"},  # served as text/csv
            image("http://files.example.test/pier"),
        ],
    )
    pdf, csv, png = answer["parts"]
    assert (pdf["status"], pdf["plugin"], pdf["filename"]) == ("read", "pdf", "report.pdf")
    assert (csv["status"], csv["plugin"]) == ("read", "csv")
    assert (png["status"], png["plugin"], png["filename"]) == ("read", "exif", "pier")
    assert asked == ["/report.pdf", "/birds", "/pier"]
    assert loopback.violations == []
    (hit,) = await served.search("nineteen herons", limit=1)
    assert "nineteen herons" in hit["memory"]
    assert "[part 1, file]" in hit["memory"]
    assert "bird: kingfisher; count: 3" in hit["memory"]
    assert "description: Egrets roosting on the pier" in hit["memory"]


async def test_the_guard_refuses_a_private_redirect_and_a_loopback_name(
    aiohttp_client: MakeClient, tmp_path: Path, files: tuple[TestServer, list[str]]
) -> None:
    server, asked = files
    loopback = Loopback(routes={PUBLIC: server.port}, budget=1)
    served = await serve_with(aiohttp_client, tmp_path, guard(server, loopback), fetch_urls=True)
    answer = await served.remember(
        "guarded",
        [
            text("Links that point inside."),
            image("http://files.example.test/sneaky"),
            image("http://inside.example.test/secret.png"),
        ],
    )
    redirected, inside = answer["parts"]
    assert redirected["status"] == "refused"
    assert "redirect 1 to http://10.0.0.7/admin" in redirected["reason"]
    assert "private" in redirected["reason"]
    assert inside["status"] == "refused"
    assert "inside.example.test resolves to 127.0.0.1, a loopback address" in inside["reason"]
    assert asked == ["/sneaky"]  # one connection, to the public hop, and no other
    assert loopback.violations == []


async def test_fetch_urls_on_builds_the_guard_from_the_settings(
    aiohttp_client: MakeClient, tmp_path: Path, files: tuple[TestServer, list[str]]
) -> None:
    server, asked = files
    served = await serve_with(
        aiohttp_client, tmp_path, fetch_urls=True, fetch_allowed_ports=(server.port,)
    )
    answer = await served.remember(
        "literal",
        [text("A loopback link."), image(f"http://127.0.0.1:{server.port}/report.pdf")],
    )
    (outcome,) = answer["parts"]
    assert outcome["status"] == "refused"
    assert "127.0.0.1 is a loopback address" in outcome["reason"]
    assert asked == []
