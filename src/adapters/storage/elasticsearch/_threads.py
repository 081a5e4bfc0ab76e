"""ThreadStore on Elasticsearch: one document per thread, routed by tenant.

``cited`` indexes the memory ids the thread's stored annotations cite (and
have not forgotten): ``forget_citations`` finds the threads to rewrite with
a search on it, after a refresh, and rewrites each with ``if_seq_no``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
from attrs import define

from memoryd.adapters.storage.elasticsearch import _codec as codec
from memoryd.adapters.storage.elasticsearch._cluster import DELETE, Cluster, Doc, doc_id
from memoryd.core.errors import NotFound
from memoryd.core.model import Thread, ThreadMessage, forget_dead_citations

KIND = "threads"
#: Threads read per page.
PAGE = 200


def thread_doc_id(tenant_id: str, thread_id: str) -> str:
    return doc_id("thread", tenant_id, thread_id)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _cited(messages: Sequence[Doc]) -> list[str]:
    return sorted(
        {a["id"] for m in messages for a in m.get("annotations", []) if not a.get("forgotten")}
    )


def _document(thread: Thread, messages: list[Doc], created_seq: int) -> Doc:
    updated = _utc(thread.updated_at or thread.created_at)
    created = _utc(thread.created_at)
    sort_at = updated or created
    return {
        "tenant": thread.tenant_id,
        "thread_id": thread.id,
        "tags": list(thread.container_tags),
        "cited": _cited(messages),
        "sort_us": int(sort_at.timestamp() * 1_000_000) if sort_at is not None else 0,
        "created_seq": created_seq,
        "state": {
            "title": thread.title,
            "tags": list(thread.container_tags),
            "created_at": codec.to_text(created),
            "updated_at": codec.to_text(updated),
            "messages": messages,
        },
    }


def _thread(source: Doc, *, with_messages: bool) -> Thread:
    state = source["state"]
    return Thread(
        id=source["thread_id"],
        tenant_id=source["tenant"],
        messages=tuple(codec.thread_message_from_doc(m) for m in state["messages"])
        if with_messages
        else (),
        title=state["title"],
        created_at=codec.from_text(state["created_at"]),
        updated_at=codec.from_text(state["updated_at"]),
        container_tags=tuple(state["tags"]),
    )


@define
class EsThreadStore:
    """Chat threads: their messages and the annotations of each answer."""

    cluster: Cluster
    #: Which of these memories the tenant still has (the memory index's ``existing``);
    #: None: take every cited memory as live.
    live: Callable[[str, Sequence[str]], Awaitable[set[str]]] | None = None

    async def _forget_dead(self, tenant_id: str, messages: Sequence[ThreadMessage]) -> list[Doc]:
        """The messages as documents, citations of memories the tenant lost forgotten."""
        cited = [a.id for m in messages for a in m.annotations if not a.forgotten]
        live = set(cited)
        if cited and self.live is not None:
            live = await self.live(tenant_id, cited)
        kept = forget_dead_citations(messages, live)
        return [codec.thread_message_doc(m) for m in kept]

    async def create_thread(self, thread: Thread) -> None:
        messages = await self._forget_dead(thread.tenant_id, thread.messages)
        doc = _document(thread, messages, time.time_ns())
        await self.cluster.update(
            KIND,
            thread_doc_id(thread.tenant_id, thread.id),
            lambda _: (doc, None),
            routing=thread.tenant_id,
            refresh=self.cluster.refresh,
        )

    async def get_thread(self, tenant_id: str, thread_id: str) -> Thread | None:
        found = await self.cluster.get(KIND, thread_doc_id(tenant_id, thread_id), routing=tenant_id)
        if found is None:
            return None
        return _thread(found["_source"], with_messages=True)

    async def append_messages(
        self, tenant_id: str, thread_id: str, messages: Sequence[ThreadMessage]
    ) -> None:
        """Append messages durably, in order. Raises ``NotFound`` for an unknown thread."""
        stamps = [m.created_at for m in messages if m.created_at is not None]
        updated = _utc(max(stamps) if stamps else datetime.now(UTC))
        new = await self._forget_dead(tenant_id, messages)

        def write(doc: Doc | None) -> tuple[Doc | None, None]:
            if doc is None:
                raise NotFound(f"No thread {thread_id!r}", details={"threadId": thread_id})
            thread = attrs.evolve(_thread(doc, with_messages=False), updated_at=updated)
            return _document(thread, [*doc["state"]["messages"], *new], doc["created_seq"]), None

        await self.cluster.update(
            KIND,
            thread_doc_id(tenant_id, thread_id),
            write,
            routing=tenant_id,
            refresh=self.cluster.refresh,
        )

    async def forget_citations(self, tenant_id: str, memory_ids: Sequence[str]) -> int:
        """Forget the annotations citing these memories; how many changed.

        The threads' ``updated_at`` is left alone (nobody wrote to them).
        """
        gone = set(memory_ids)
        if not gone:
            return 0
        await self.cluster.refresh_now(KIND)
        changed = 0
        ids = sorted(gone)
        for start in range(0, len(ids), 1000):
            part = ids[start : start + 1000]
            clauses = [{"term": {"tenant": tenant_id}}, {"terms": {"cited": part}}]
            answer = await self.cluster.search(
                KIND,
                query={"bool": {"filter": clauses}},
                source_includes=["thread_id"],
                size=10_000,
                routing=tenant_id,
            )  # fmt: skip
            for hit in answer["hits"]["hits"]:
                changed += await self._forget_in(tenant_id, hit["_id"], gone)
        return changed

    async def _forget_in(self, tenant_id: str, id_: str, gone: set[str]) -> int:
        def write(doc: Doc | None) -> tuple[Doc | None, int]:
            if doc is None:
                return None, 0
            count = 0
            messages = []
            for m in doc["state"]["messages"]:
                message = codec.thread_message_from_doc(m)
                hits = sum(1 for a in message.annotations if a.id in gone and not a.forgotten)
                if hits:
                    count += hits
                    message = attrs.evolve(
                        message,
                        annotations=tuple(
                            a.forget() if a.id in gone and not a.forgotten else a
                            for a in message.annotations
                        ),
                    )
                messages.append(codec.thread_message_doc(message))
            if not count:
                return None, 0
            state = {**doc["state"], "messages": messages}
            return {**doc, "cited": _cited(messages), "state": state}, count

        return await self.cluster.update(
            KIND, id_, write, routing=tenant_id, refresh=self.cluster.refresh
        )

    async def list_threads(
        self,
        tenant_id: str,
        *,
        limit: int,
        offset: int,
        within_tags: tuple[str, ...] | None = None,
    ) -> list[Thread]:
        """Newest first; with ``within_tags``, those whose tags are not empty and all in it."""
        sort = [{"sort_us": "desc"}, {"created_seq": "desc"}]
        query: Doc = {"term": {"tenant": tenant_id}}
        if within_tags is None:
            answer = await self.cluster.search(
                KIND,
                query=query,
                sort=sort,
                size=limit,
                from_=offset,
                source_excludes=["state.messages"],
                routing=tenant_id,
            )
            return [_listed(h["_source"]) for h in answer["hits"]["hits"]]
        allowed = set(within_tags)
        out: list[Thread] = []
        skipped = 0
        after: list[Any] | None = None
        while len(out) < limit:
            body: Doc = {
                "query": {"bool": {"filter": [query, {"terms": {"tags": list(within_tags)}}]}},
                "sort": sort,
                "size": PAGE,
                "source_excludes": ["state.messages"],
                "routing": tenant_id,
            }
            if after is not None:
                body["search_after"] = after
            hits = (await self.cluster.search(KIND, **body))["hits"]["hits"]
            for hit in hits:
                tags = set(hit["_source"]["tags"])
                if not tags or not tags <= allowed:
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                out.append(_listed(hit["_source"]))
                if len(out) == limit:
                    break
            if len(hits) < PAGE:
                break
            after = hits[-1]["sort"]
        return out

    async def delete_thread(self, tenant_id: str, thread_id: str) -> bool:
        def write(doc: Doc | None) -> tuple[Doc | None, bool]:
            return (DELETE, True) if doc is not None else (None, False)

        return await self.cluster.update(
            KIND,
            thread_doc_id(tenant_id, thread_id),
            write,
            routing=tenant_id,
            refresh=self.cluster.refresh,
        )


def _listed(source: Doc) -> Thread:
    source["state"].setdefault("messages", [])
    return _thread(source, with_messages=False)
