"""``memoryd mcp`` as a desktop MCP client drives it: the SDK's own client over stdio.

A real memoryd (the app and runner of ``memoryd serve``) listens on 127.0.0.1
with a real key; ``memoryd mcp`` runs as a subprocess and talks to it by URL
and key, as its users configure it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent, TextResourceContents

from memoryd.settings import Settings
from tests.e2e._server import free_port, memoryd_command, memoryd_env
from tests.helpers import MakeKey, memoryd_on_loopback

TOOLS = {"add_memory", "search_memories", "get_profile", "forget"}
BEES = "I keep three hives of bees on the roof of my flat in Leith."


@asynccontextmanager
async def mcp_session(
    tmp_path: Path, url: str, key: str, *args: str
) -> AsyncIterator[ClientSession]:
    """``memoryd mcp ARGS`` as a subprocess, and an initialized client session to it."""
    env = memoryd_env(tmp_path / "mcp-data", MEMORYD_URL=url, MEMORYD_API_KEY=key)
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "memoryd", "mcp", *args], env=env
    )
    with (tmp_path / "mcp-stderr.log").open("w", encoding="utf-8") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


async def call(session: ClientSession, name: str, **arguments: Any) -> CallToolResult:
    result = await session.call_tool(name, arguments)
    assert isinstance(result, CallToolResult)
    return result


def data(result: CallToolResult) -> Any:
    assert not result.is_error, text(result)
    return result.structured_content


def text(result: CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


async def read(session: ClientSession, uri: str) -> Any:
    contents = (await session.read_resource(uri)).contents
    assert isinstance(contents[0], TextResourceContents)
    return json.loads(contents[0].text)


async def test_add_search_forget_over_stdio(
    tmp_path: Path, settings: Settings, make_key: MakeKey
) -> None:
    key = await make_key("acme")
    async with (
        memoryd_on_loopback(settings) as (url, _),
        mcp_session(tmp_path, url, key, "--container-tag", "alice") as session,
    ):
        listed = (await session.list_tools()).tools
        assert {t.name for t in listed} == TOOLS
        profile_tool = next(t for t in listed if t.name == "get_profile")
        assert "/v4/profile" in (profile_tool.description or "")  # names its route

        adding = await call(session, "add_memory", text=BEES, metadata={"source": "mcp"})
        added = data(adding)
        assert json.loads(text(adding)) == added  # the same JSON for clients without structure
        assert added["memoriesAdded"] == 1
        assert added["action"] == "created"
        cid = added["conversationId"]

        found = data(await call(session, "search_memories", q="who keeps bees?", limit=3))
        top = found["results"][0]
        assert top["conversationId"] == cid
        assert "bees" in top["memory"]
        assert top["id"]
        assert isinstance(top["similarity"], float)
        assert top["containerTags"] == ["alice"]  # --container-tag is the default tag
        assert top["metadata"] == {"source": "mcp"}

        # Another tag scopes the search away from it.
        other = data(await call(session, "search_memories", q="bees", containerTags=["bob"]))
        assert other["results"] == []

        profile = data(await call(session, "get_profile", containerTag="alice", q="bees"))
        sections = profile["profile"]["static"] + profile["profile"]["dynamic"]
        assert any("bees" in m for m in sections), profile
        assert any("bees" in r["memory"] for r in profile["searchResults"]["results"]), profile

        uris = {str(r.uri) for r in (await session.list_resources()).resources}
        assert {"memoryd://tags", "memoryd://tags/alice"} <= uris
        templates = (await session.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["memoryd://tags/{tag}"]
        assert "alice" in (await read(session, "memoryd://tags"))["containerTags"]
        tagged = await read(session, "memoryd://tags/alice")
        assert [m["conversationId"] for m in tagged["memories"]] == [cid]

        forgotten = data(await call(session, "forget", conversationId=cid))
        assert forgotten == {"deleted": True, "conversationId": cid, "memoriesRemoved": 1}
        after = data(await call(session, "search_memories", q="who keeps bees?"))
        assert all(r["conversationId"] != cid for r in after["results"])
        again = await call(session, "forget", conversationId=cid)
        assert again.is_error
        assert "No conversation" in text(again)


async def test_a_wrong_key_is_a_clear_tool_error(
    tmp_path: Path, settings: Settings, make_key: MakeKey
) -> None:
    await make_key("acme")
    async with (
        memoryd_on_loopback(settings) as (url, _),
        mcp_session(tmp_path, url, "md_not-a-key-of-this-server") as session,
    ):
        refused = await call(session, "search_memories", q="bees")
        assert refused.is_error
        said = text(refused)
        assert "401" in said
        assert "MEMORYD_API_KEY" in said
        # The server lives on: the next calls are answered too.
        assert {t.name for t in (await session.list_tools()).tools} == TOOLS
        also = await call(session, "add_memory", text=BEES)
        assert also.is_error
        assert "401" in text(also)


async def test_an_unreachable_server_names_the_setting(tmp_path: Path) -> None:
    async with mcp_session(tmp_path, "http://127.0.0.1:9", "md_x") as session:
        failed = await call(session, "forget", conversationId="c1")
        assert failed.is_error
        assert "MEMORYD_URL" in text(failed)


def tail(log: Path) -> str:
    return log.read_text(encoding="utf-8")[-4000:]


async def wait_for_port(port: int, process: asyncio.subprocess.Process, log: Path) -> None:
    """Until ``port`` accepts a connection (a generous deadline; nothing is timed)."""
    for _ in range(1200):
        assert process.returncode is None, tail(log)
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise TimeoutError(tail(log))


async def test_streamable_http_on_loopback(
    tmp_path: Path, settings: Settings, make_key: MakeKey
) -> None:
    key = await make_key("acme")
    port = free_port()
    log = tmp_path / "mcp-http.log"
    async with memoryd_on_loopback(settings) as (url, _):
        env = memoryd_env(tmp_path / "mcp-data", MEMORYD_URL=url, MEMORYD_API_KEY=key)
        with log.open("w", encoding="utf-8") as out:
            process = await asyncio.create_subprocess_exec(
                *memoryd_command("mcp", "--http", "--port", str(port)),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        try:
            await wait_for_port(port, process, log)
            async with (
                streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                assert {t.name for t in (await session.list_tools()).tools} == TOOLS
                added = data(await call(session, "add_memory", text=BEES, containerTags=["x"]))
                found = data(await call(session, "search_memories", q="bees", containerTags=["x"]))
                assert found["results"][0]["conversationId"] == added["conversationId"]
        finally:
            if process.returncode is None:
                process.terminate()
            await process.wait()


def test_the_cli_loads_the_sdk_only_for_mcp(tmp_path: Path) -> None:
    code = (
        "import sys, memoryd.cli\n"
        "memoryd.cli.build_parser().parse_args(['mcp', '--container-tag', 'a'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'mcp', 'pydantic'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    # Without a key, it says which setting to give and exits before serving.
    env = memoryd_env(tmp_path / "data")
    refused = subprocess.run(
        memoryd_command("mcp"), env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert refused.returncode == 2
    assert "MEMORYD_API_KEY" in refused.stderr
