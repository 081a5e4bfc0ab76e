"""ConversationStore on Elasticsearch: one document per (tenant, conversationId).

See ``_state`` for what the document holds and how a commit is checked. The
outbox entries live in the conversation's own document, so recording an
entry is part of the commit's one write; ``pending_changes`` of one
conversation is a realtime GET, the global one (at start, in ``memoryd
reindex``) a search after a refresh.

Quota: Elasticsearch has no transaction spanning the key and the
conversation. The charge is made on the key document first (with
``if_seq_no``, so concurrent charges never pass the quota together) and
refunded if the commit fails. A crash between the charge and the commit
over-charges the key by that one request's tokens; nothing can under-charge
it (the charge always comes first).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from attrs import define, field

from memoryd.adapters.storage.elasticsearch import _memory_edits as edits
from memoryd.adapters.storage.elasticsearch import _state as states
from memoryd.adapters.storage.elasticsearch._cluster import DELETE, Cluster, Doc, doc_id
from memoryd.adapters.storage.elasticsearch._codec import to_text
from memoryd.adapters.storage.elasticsearch._keys import EsKeyStore
from memoryd.adapters.storage.elasticsearch._threads import EsThreadStore
from memoryd.core.model import Conversation, Memory, Scope
from memoryd.core.ports import (
    ConversationChange,
    IndexChange,
    IndexedMemory,
    PendingChange,
    TokenCharge,
)

log = logging.getLogger(__name__)

KIND = "conversations"
#: Conversation documents read per page of a snapshot or a global outbox scan.
PAGE = 20


def conversation_doc_id(tenant_id: str, conversation_id: str) -> str:
    return doc_id("conversation", tenant_id, conversation_id)


def _now_us() -> int:
    return time.time_ns() // 1000


@define
class EsConversationStore:
    """The source of truth for conversations, their messages and their memories."""

    cluster: Cluster
    keys: EsKeyStore
    threads: EsThreadStore
    dimension: int | None = None
    #: Where the entries this process read are (seq -> tenant, conversationId).
    _seen: dict[int, tuple[str, str]] = field(factory=dict, init=False)

    async def _state(self, tenant_id: str, conversation_id: str, **kw: Any) -> Doc | None:
        found = await self.cluster.get(
            KIND, conversation_doc_id(tenant_id, conversation_id), routing=tenant_id, **kw
        )
        if found is None:
            return None
        # With source filtering, a document whose scopes are all deleted (its deletion
        # waiting in the outbox) comes back without ``state``: it holds no scope.
        state: Doc = found["_source"].get("state", {})
        state.setdefault("scopes", [])
        return state

    async def get_conversation(
        self, tenant_id: str, conversation_id: str, *, scope: Scope | None = ()
    ) -> Conversation | None:
        state = await self._state(
            tenant_id, conversation_id, source_excludes=["state.scopes.memories", "state.outbox"]
        )
        if state is None:
            return None
        state.setdefault("outbox", [])
        for entry in state["scopes"]:
            entry.setdefault("memories", [])
        entry = states.pick_any_scope(state) if scope is None else states.find_scope(state, scope)
        return states.conversation_of(tenant_id, conversation_id, entry) if entry else None

    async def memory_ids(
        self, tenant_id: str, conversation_id: str, *, scope: Scope = ()
    ) -> tuple[str, ...]:
        state = await self._state(
            tenant_id,
            conversation_id,
            source_includes=["state.scopes.scope", "state.scopes.memories.id"],
        )
        if state is None:
            return ()
        for e in state["scopes"]:
            e.setdefault("memories", [])
        entry = states.find_scope(state, scope)
        return tuple(m["id"] for m in entry["memories"]) if entry else ()

    async def commit(self, change: ConversationChange) -> None:
        """Charge the key, then write the conversation and its outbox entry in one document.

        Raises ``QuotaExceeded`` (nothing written), or ``Stale`` (a 503: the
        conversation changed under the request; nothing written, the charge
        refunded).
        """
        conv = change.conversation
        charge = change.charge
        if charge is not None:
            await self.keys.charge(charge)
        try:

            def write(doc: Doc | None) -> tuple[Doc, None]:
                state = doc["state"] if doc is not None else None
                seq = states.next_seq(state or states.empty_state(), _now_us())
                new = states.commit(state, change, seq, self.dimension)
                return states.document(
                    conv.tenant_id, conv.conversation_id, new, to_text(conv.updated_at)
                ), None

            await self.cluster.update(
                KIND,
                conversation_doc_id(conv.tenant_id, conv.conversation_id),
                write,
                routing=conv.tenant_id,
            )
        except BaseException:
            if charge is not None:
                try:
                    await asyncio.shield(self.keys.refund(charge))
                except Exception as e:  # the cluster is gone: the key stays over-charged
                    log.error("could not refund %d tokens to key %s: %r", charge.tokens,
                              charge.key_id, e)  # fmt: skip
            raise

    async def delete_conversation(
        self, tenant_id: str, conversation_id: str, *, scope: Scope | None = ()
    ) -> tuple[str, ...] | None:
        """Delete the conversation (every scope's, with ``scope=None``); its memory ids.

        The threads' citations of its memories are forgotten before the write
        (so that no crash leaves the quoted text behind) and after it (for an
        answer stored meanwhile).
        """
        before = await self.memory_ids_in(tenant_id, conversation_id, scope)
        if before is None:
            return None
        await self.threads.forget_citations(tenant_id, before)

        def write(doc: Doc | None) -> tuple[Doc | None, list[str] | None]:
            state = doc["state"] if doc is not None else None
            seq = states.next_seq(state or states.empty_state(), _now_us())
            new, ids = states.delete(state, scope, seq)
            if new is None:
                return None, None
            return states.document(tenant_id, conversation_id, new, None), ids

        ids = await self.cluster.update(
            KIND, conversation_doc_id(tenant_id, conversation_id), write, routing=tenant_id
        )
        if ids is None:
            return None
        await self.threads.forget_citations(tenant_id, ids)
        return tuple(ids)

    # Single memories (``MemoryStore``): see ``_memory_edits``.

    async def list_memories(
        self,
        tenant_id: str,
        *,
        tags: Sequence[str] = (),
        memory_id: str | None = None,
        text: str | None = None,
        limit: int = 100,
    ) -> list[Memory]:
        """The tenant's memories with one of ``tags``, of that id or text, newest said first."""
        return await edits.list_memories(
            self, tenant_id, tags=tags, memory_id=memory_id, text=text, limit=limit
        )

    async def update_memory(
        self, item: IndexedMemory, *, charge: TokenCharge | None = None
    ) -> bool:
        """Replace the memory's text, vectors and metadata in its document, with its entry."""
        return await edits.update_memory(self, item, charge=charge, dimension=self.dimension)

    async def forget_memories(self, tenant_id: str, memory_ids: Sequence[str]) -> tuple[str, ...]:
        """Delete the memories from their documents (with entries) and the threads' quotes."""
        return await edits.forget_memories(self, tenant_id, memory_ids)

    async def memory_ids_in(
        self, tenant_id: str, conversation_id: str, scope: Scope | None
    ) -> list[str] | None:
        """The memory ids of the conversation in ``scope`` (None: every scope); None if none."""
        state = await self._state(
            tenant_id,
            conversation_id,
            source_includes=["state.scopes.scope", "state.scopes.memories.id"],
        )
        if state is None:
            return None
        wanted = None if scope is None else sorted(set(scope))
        going = [e for e in state["scopes"] if wanted is None or e["scope"] == wanted]
        if not going:
            return None
        return [m["id"] for e in going for m in e.get("memories", [])]

    async def check(self) -> None:
        """Raise ``StoreUnavailable`` unless the cluster answers a read and a write."""
        await self.cluster.get(KIND, "check", routing=None)
        await self.cluster.update(
            "state", "check", lambda _: ({"tenant": "", "kind": "check"}, None), routing=None
        )

    # --- the outbox --------------------------------------------------------------------------

    async def pending_changes(
        self,
        *,
        tenant_id: str | None = None,
        conversation_id: str | None = None,
        limit: int = 100,
    ) -> list[PendingChange]:
        if tenant_id is not None and conversation_id is not None:
            state = await self._state(tenant_id, conversation_id)
            if state is None:
                return []
            found = states.pending(tenant_id, conversation_id, state)
            for p in found:
                self._seen[p.seq] = (tenant_id, conversation_id)
            return found[:limit]
        await self.cluster.refresh_now(KIND)
        query: Doc = {"bool": {"filter": [{"exists": {"field": "outbox_seqs"}}]}}
        if tenant_id is not None:
            query["bool"]["filter"].append({"term": {"tenant": tenant_id}})
        answer = await self.cluster.search(
            KIND,
            query=query,
            sort=[{"outbox_seqs": {"order": "asc", "mode": "min"}}],
            size=max(1, limit),
            routing=tenant_id,
        )
        out: list[PendingChange] = []
        for hit in answer["hits"]["hits"]:
            source = hit["_source"]
            tenant, cid = source["tenant"], source["conversation_id"]
            for p in states.pending(tenant, cid, source["state"]):
                self._seen[p.seq] = (tenant, cid)
                out.append(p)
        out.sort(key=lambda p: p.seq)
        return out[:limit]

    async def mark_applied(self, seqs: Sequence[int]) -> None:
        by_doc: dict[tuple[str, str], list[int]] = {}
        unknown = [s for s in seqs if s not in self._seen]
        if unknown:
            await self.cluster.refresh_now(KIND)
            answer = await self.cluster.search(
                KIND,
                query={"terms": {"outbox_seqs": unknown}},
                source_includes=["tenant", "conversation_id", "outbox_seqs"],
                size=len(unknown),
            )
            for hit in answer["hits"]["hits"]:
                source = hit["_source"]
                for s in source.get("outbox_seqs", []):
                    self._seen[s] = (source["tenant"], source["conversation_id"])
        for s in seqs:
            where = self._seen.pop(s, None)
            if where is not None:
                by_doc.setdefault(where, []).append(s)
        for (tenant, cid), done in by_doc.items():

            def write(doc: Doc | None, done: list[int] = done) -> tuple[Doc | None, None]:
                if doc is None:
                    return None, None
                new = states.mark_applied(doc["state"], done)
                if not new["scopes"] and not new["outbox"]:
                    return DELETE, None  # a deleted conversation, fully forgotten
                return {**doc, "outbox_seqs": [e["seq"] for e in new["outbox"]], "state": new}, None

            await self.cluster.update(KIND, conversation_doc_id(tenant, cid), write, routing=tenant)

    # --- rebuilding the index ----------------------------------------------------------------

    async def tenant_ids(self) -> list[str]:
        """Every tenant with a live conversation: terms aggregations, a page after another."""
        await self.cluster.refresh_now(KIND)
        tenants: list[str] = []
        while True:
            clauses: list[Doc] = [{"term": {"live": True}}]
            if tenants:
                clauses.append({"range": {"tenant": {"gt": tenants[-1]}}})
            answer = await self.cluster.search(
                KIND,
                query={"bool": {"filter": clauses}},
                size=0,
                aggs={"tenants": {"terms": {"field": "tenant", "size": 1000,
                                            "order": {"_key": "asc"}}}},
            )  # fmt: skip
            buckets = answer["aggregations"]["tenants"]["buckets"]
            tenants += [b["key"] for b in buckets]
            if len(buckets) < 1000:
                return tenants

    async def snapshot(self, tenant_id: str) -> AsyncIterator[IndexChange]:
        async for source in self._live(tenant_id):
            for change in states.snapshot(tenant_id, source["conversation_id"], source["state"]):
                yield change

    async def conversations_of(self, tenant_id: str) -> AsyncIterator[Conversation]:
        """Every live conversation of the tenant (each scope's), a page after another."""
        excluded = ["state.scopes.memories", "state.outbox"]
        async for source in self._live(tenant_id, source_excludes=excluded):
            for entry in source["state"]["scopes"]:
                yield states.conversation_of(tenant_id, source["conversation_id"], entry)

    async def _live(self, tenant_id: str, **options: Any) -> AsyncIterator[Doc]:
        """The ``_source`` of every live conversation document of the tenant, after a refresh."""
        await self.cluster.refresh_now(KIND)
        after: list[Any] | None = None
        while True:
            body: Doc = {
                "query": {
                    "bool": {"filter": [{"term": {"tenant": tenant_id}}, {"term": {"live": True}}]}
                },
                "sort": [{"conversation_id": "asc"}],
                "size": PAGE,
                "routing": tenant_id,
                **options,
            }
            if after is not None:
                body["search_after"] = after
            answer = await self.cluster.search(KIND, **body)
            hits = answer["hits"]["hits"]
            for hit in hits:
                yield hit["_source"]
            if len(hits) < PAGE:
                return
            after = hits[-1]["sort"]
