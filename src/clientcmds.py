"""``memoryd ingest`` and ``memoryd search``: HTTP clients of a running server.

They talk to the server rather than to the data directory, because the
server owns the in-memory index: a write that bypassed it would not be
searchable until its next start.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from tqdm import tqdm

from memoryd.core.errors import ConfigurationError


def read_conversations(path: Path) -> list[dict[str, Any]]:
    """Conversations from JSON (one object, or an array of them) or JSONL (one per line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"Cannot read {path}: {exc.strerror}") from exc
    stripped = text.lstrip()
    if not stripped:
        return []
    try:
        if path.suffix == ".jsonl" or (stripped[0] == "{" and "\n{" in stripped.rstrip()):
            return list(_jsonl(text, path))
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{path}: malformed JSON at line {exc.lineno}: {exc.msg}") from exc
    items = data if isinstance(data, list) else [data]
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConfigurationError(f"{path}: item {i} is not a conversation object")
    return items


def _jsonl(text: str, path: Path) -> Iterator[dict[str, Any]]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{path}:{lineno}: malformed JSON: {exc.msg}") from exc
        if not isinstance(item, dict):
            raise ConfigurationError(f"{path}:{lineno}: not a conversation object")
        yield item


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def ingest_file(url: str, key: str, path: Path, *, tags: Sequence[str] = ()) -> int:
    """POST each conversation in ``path``; a progress bar shows the way. Returns an exit code."""
    conversations = read_conversations(path)
    failures = 0
    totals = {"messagesAdded": 0, "memoriesAdded": 0}
    async with aiohttp.ClientSession(base_url=url, headers=_headers(key)) as session:
        for body in tqdm(conversations, desc="ingest", unit="conv", file=sys.stderr):
            if tags:
                body["containerTags"] = list(dict.fromkeys([*body.get("containerTags", []), *tags]))
            async with session.post("/v4/conversations", json=body) as response:
                answer = await response.json(content_type=None)
                if response.status != 200:
                    failures += 1
                    cid = body.get("conversationId", "?")
                    tqdm.write(f"{cid}: {response.status} {json.dumps(answer)}", file=sys.stderr)
                    continue
                for k in totals:
                    totals[k] += int(answer.get(k, 0))
    print(
        f"{len(conversations) - failures} of {len(conversations)} conversations stored; "
        f"{totals['messagesAdded']} messages and {totals['memoriesAdded']} memories added."
    )
    return 1 if failures else 0


async def search_text(
    url: str, key: str, query: str, *, tags: Sequence[str] = (), limit: int = 5, raw: bool = False
) -> int:
    body: dict[str, Any] = {"q": query, "limit": limit}
    if tags:
        body["containerTags"] = list(tags)
    async with (
        aiohttp.ClientSession(base_url=url, headers=_headers(key)) as session,
        session.post("/v4/search", json=body) as response,
    ):
        answer = await response.json(content_type=None)
    if response.status != 200:
        print(f"memoryd: {response.status} {json.dumps(answer)}", file=sys.stderr)
        return 1
    if raw:
        print(json.dumps(answer, indent=2))
        return 0
    for r in answer["results"]:
        print(f"{r['similarity']:.3f}  {r['conversationId']}  {r['memory']}")
    if not answer["results"]:
        print("No memories found.")
    return 0


async def chat_text(url: str, key: str, question: str, *, thread: str | None = None) -> int:
    """Ask ``/api/chat`` and print the answer as it streams, then the memories it cited."""
    body: dict[str, Any] = {"messages": [{"role": "user", "content": question}]}
    if thread:
        body["threadId"] = thread
    cited: list[dict[str, Any]] = []
    async with (
        aiohttp.ClientSession(base_url=url, headers=_headers(key)) as session,
        session.post("/api/chat", json=body) as response,
    ):
        if response.status != 200:
            answer = await response.json(content_type=None)
            print(f"memoryd: {response.status} {json.dumps(answer)}", file=sys.stderr)
            return 1
        async for raw in response.content:
            kind, _, payload = raw.decode().rstrip("\n").partition(":")
            if kind == "0":
                print(json.loads(payload), end="", flush=True)
            elif kind == "8":
                cited = json.loads(payload)
            elif kind == "3":
                print(f"\nmemoryd: {json.loads(payload)}", file=sys.stderr)
                return 1
    print()
    for a in cited:
        print(f"  [{a['similarity']:.2f}] {a['title']}", file=sys.stderr)
    print(f"thread: {response.headers.get('Supermemory-Thread-Uuid', '')}", file=sys.stderr)
    return 0
