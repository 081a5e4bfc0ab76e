"""``memoryd mcp``: a Model Context Protocol server over a running memoryd's HTTP API.

Built on the official ``mcp`` SDK (``pip install 'memoryd[mcp]'``). Like
``memoryd search``, it is an HTTP client of a running server, with a URL and
an API key; it never opens the data directory. Only the ``mcp`` command imports
this module, so ``import memoryd.cli`` stays light.

Tools: ``add_memory``, ``search_memories``, ``get_profile`` and ``forget``.
Resources: ``memoryd://tags`` (the container tags this server knows of) and
``memoryd://tags/{tag}`` (a tag's recent memories). memoryd has no route that
lists a tenant's tags, nor one that describes the calling key, so the known
tags are those given with ``--container-tag`` plus those this process has
written to or seen in search results; docs/mcp.md says so.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import quote

import aiohttp
from attrs import define, field
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resources import FunctionResource
from mcp_types import ToolAnnotations
from pydantic import Field

from memoryd import __version__

#: The spelling of a metadata value that memoryd accepts.
Scalar = str | int | float | bool
Tags = Annotated[
    list[str] | None,
    Field(
        description="container tags (for example a user or project id); default: --container-tag"
    ),
]

TAGS_URI = "memoryd://tags"
TAG_URI = "memoryd://tags/{tag}"


def _explain(status: int, answer: Any, url: str) -> str:
    """What a refused request means, and what to change."""
    error = answer.get("error", "") if isinstance(answer, dict) else str(answer)[:200]
    details = answer.get("details") if isinstance(answer, dict) else None
    said = f"memoryd answered {status} {error}".rstrip()
    if details:
        said += f": {json.dumps(details)}"
    if status == 401:
        return (
            f"{said}. The API key was refused: set MEMORYD_API_KEY (or pass --key to "
            f"`memoryd mcp`) to an active key of the server at {url} (`memoryd keys list`)."
        )
    if status == 403:
        return f"{said}. This key is limited to other container tags."
    if status == 402:
        return f"{said}. This key's token quota is used up."
    return said


@define
class MemorydClient:
    """The HTTP calls the tools make: one ``aiohttp`` session, opened on first use."""

    url: str
    key: str
    _session: aiohttp.ClientSession | None = field(default=None, init=False)

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """``(status, JSON answer)``; a server that cannot be reached is a ``ToolError``."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                base_url=self.url,
                headers={"Authorization": f"Bearer {self.key}"},
                timeout=aiohttp.ClientTimeout(total=120),
            )
        try:
            async with self._session.request(method, path, json=body) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ToolError(
                f"Cannot reach memoryd at {self.url} ({type(exc).__name__}: {exc}). Is "
                "`memoryd serve` running there? Set MEMORYD_URL (or --url) to its address."
            ) from None
        try:
            return response.status, json.loads(text) if text else None
        except json.JSONDecodeError:
            return response.status, text

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        """The answer of a request that must succeed (any 2xx); else a ``ToolError``."""
        status, answer = await self.call(method, path, body)
        if not 200 <= status < 300:
            raise ToolError(_explain(status, answer, self.url))
        return answer

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _result(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "memory", "similarity", "conversationId", "containerTags", "metadata")
    return {k: r[k] for k in (*keys, "timestamp") if k in r}


@define
class MemorydTools:
    """The tools and resources, over a :class:`MemorydClient`; ``known_tags`` grows as it goes."""

    client: MemorydClient
    default_tags: tuple[str, ...] = ()
    server: MCPServer[Any] | None = None
    known_tags: dict[str, None] = field(factory=dict)

    def learn(self, tags: Sequence[str]) -> None:
        """Remember ``tags`` and offer each as a resource from now on."""
        for tag in tags:
            if tag in self.known_tags:
                continue
            self.known_tags[tag] = None
            if self.server is not None:
                self.server.add_resource(self._tag_resource(tag))

    def _tag_resource(self, tag: str) -> FunctionResource:
        async def read() -> str:
            return await self.tag_memories(tag)

        return FunctionResource(
            uri=f"memoryd://tags/{quote(tag, safe='')}",
            name=f"tag:{tag}",
            title=f"Memories tagged {tag!r}",
            description=f"The newest memories with the container tag {tag!r} (JSON).",
            mime_type="application/json",
            fn=read,
        )

    def _tags(self, given: list[str] | None) -> list[str]:
        return list(given) if given else list(self.default_tags)

    async def add_memory(
        self,
        text: Annotated[str, Field(description="what to remember, in plain words")],
        containerTags: Tags = None,
        metadata: Annotated[
            dict[str, Scalar] | None,
            Field(description="string, number or boolean values to filter on later"),
        ] = None,
        conversationId: Annotated[
            str | None,
            Field(description="an id to store it under; an existing one is replaced"),
        ] = None,
    ) -> dict[str, Any]:
        """Remember a piece of text: memoryd stores it as a one-message conversation.

        Without conversationId, a new id is made (returned as conversationId: keep it to
        forget the memory later). With the id of an existing conversation, that conversation
        is replaced by this text, which is how to correct a memory.
        """
        tags = self._tags(containerTags)
        body: dict[str, Any] = {
            "conversationId": conversationId or f"mcp-{uuid.uuid4().hex}",
            "messages": [{"role": "user", "content": text}],
        }
        if tags:
            body["containerTags"] = tags
        if metadata:
            body["metadata"] = metadata
        answer = await self.client.ok("POST", "/v4/conversations", body)
        self.learn(tags)
        keys = ("id", "conversationId", "action", "memoriesAdded", "memoriesRemoved")
        return {k: answer.get(k) for k in keys}

    async def search_memories(
        self,
        q: Annotated[str, Field(description="what to look for, as a question or keywords")],
        limit: Annotated[int, Field(ge=1, le=100, description="at most this many")] = 5,
        containerTags: Tags = None,
    ) -> dict[str, Any]:
        """Search the memories (hybrid: meaning and keywords), best first.

        Each result has its memory id, its text (memory), its cosine similarity, the
        conversationId it came from (what forget takes), its tags and its timestamp.
        """
        body: dict[str, Any] = {"q": q, "limit": limit}
        tags = self._tags(containerTags)
        if tags:
            body["containerTags"] = tags
        answer = await self.client.ok("POST", "/v4/search", body)
        results = [_result(r) for r in answer.get("results", [])]
        for r in results:
            self.learn(r.get("containerTags", []))
        return {"results": results, "total": len(results)}

    async def get_profile(
        self,
        containerTag: Annotated[str, Field(description="the user's or project's tag")],
        q: Annotated[str | None, Field(description="also search for this")] = None,
    ) -> dict[str, Any]:
        """What memoryd knows about a container tag: {profile: {static, dynamic}}.

        static holds facts that stay relevant, dynamic the recent ones; with q, also
        searchResults for it. It sends POST /v4/profile.
        """
        body: dict[str, Any] = {"containerTag": containerTag}
        if q:
            body["q"] = q
        answer = await self.client.ok("POST", "/v4/profile", body)
        self.learn([containerTag])
        return dict(answer)

    async def _recent(self, tag: str, q: str, limit: int) -> list[dict[str, Any]]:
        """A search within ``tag``, newest first, one result per distinct text."""
        body = {"q": q, "containerTag": tag, "limit": limit}
        answer = await self.client.ok("POST", "/v4/search", body)
        self.learn([tag])
        newest = sorted(
            answer.get("results", []), key=lambda r: str(r.get("timestamp", "")), reverse=True
        )
        distinct = {r["memory"]: _result(r) for r in reversed(newest)}
        return sorted(distinct.values(), key=lambda r: str(r.get("timestamp", "")), reverse=True)

    async def forget(
        self,
        conversationId: Annotated[
            str, Field(description="the conversationId that add_memory or a search returned")
        ],
    ) -> dict[str, Any]:
        """Forget a conversation: its messages, memories and vectors are deleted for good."""
        path = f"/v4/conversations/{quote(conversationId, safe='')}"
        status, answer = await self.client.call("DELETE", path)
        if status == 404:
            raise ToolError(
                f"No conversation {conversationId!r}: it was already forgotten, or it is "
                "outside this key's tenant or tags. search_memories shows the conversationId "
                "of each memory."
            )
        if status != 200:
            raise ToolError(_explain(status, answer, self.client.url))
        return dict(answer)

    async def tag_memories(self, tag: str) -> str:
        """``memoryd://tags/{tag}``: the tag's newest memories, as JSON."""
        found = await self._recent(tag, tag, 20)
        return json.dumps({"containerTag": tag, "memories": found}, indent=2)

    async def tags_listing(self) -> str:
        """``memoryd://tags``: the tags this server knows of, as JSON."""
        return json.dumps(
            {
                "containerTags": list(self.known_tags),
                "note": (
                    "memoryd has no route that lists a tenant's tags: these are the tags given "
                    "with --container-tag and those this MCP server has written or seen."
                ),
            },
            indent=2,
        )


INSTRUCTIONS = (
    "memoryd is the user's long-term memory. Search it (search_memories) before answering "
    "questions about the user; save durable facts and preferences with add_memory; "
    "forget a conversation when asked to. Container tags scope memories to a user or project."
)


def build_server(tools: MemorydTools) -> MCPServer[Any]:
    """An ``MCPServer`` offering ``tools``' methods and the tag resources."""
    server: MCPServer[Any] = MCPServer(
        "memoryd", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    server.add_tool(tools.add_memory, annotations=ToolAnnotations(open_world_hint=False))
    server.add_tool(tools.search_memories, annotations=read_only)
    server.add_tool(tools.get_profile, annotations=read_only)
    server.add_tool(
        tools.forget, annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False)
    )
    server.resource(
        TAGS_URI,
        name="tags",
        title="Container tags",
        description="The container tags this server knows of (see docs/mcp.md).",
        mime_type="application/json",
    )(tools.tags_listing)
    server.resource(
        TAG_URI,
        name="tag",
        title="Memories of a container tag",
        description="The newest memories with this container tag (JSON).",
        mime_type="application/json",
    )(tools.tag_memories)
    tools.server = server
    pending = list(tools.known_tags) or list(tools.default_tags)
    tools.known_tags.clear()
    tools.learn(pending)
    return server


async def serve_mcp(
    url: str, key: str, *, tags: Sequence[str] = (), http_port: int | None = None
) -> int:
    """Serve MCP over stdio, or streamable HTTP on 127.0.0.1:``http_port``; an exit code."""
    client = MemorydClient(url=url, key=key)
    server = build_server(MemorydTools(client=client, default_tags=tuple(dict.fromkeys(tags))))
    try:
        if http_port is None:
            await server.run_stdio_async()
        else:
            await server.run_streamable_http_async(host="127.0.0.1", port=http_port)
    finally:
        await client.close()
    return 0
