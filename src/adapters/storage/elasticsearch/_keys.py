"""KeyStore on Elasticsearch: one document per key, found by digest.

Keys are the one kind not routed by tenant: a request's key is looked up
before its tenant is known. ``find_key`` searches the digest, then reads the
key by id (realtime), so the usage it reports is current. Quota charges are
read-modify-writes with ``if_seq_no``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from attrs import define

from memoryd.adapters.storage.elasticsearch import _codec as codec
from memoryd.adapters.storage.elasticsearch._cluster import Cluster, Doc
from memoryd.core.auth import key_record
from memoryd.core.model import ApiKey
from memoryd.core.ports import TokenCharge
from memoryd.core.quota import check_quota

KIND = "keys"


def _key(source: Doc) -> ApiKey:
    state = source["state"]
    return ApiKey(
        id=source["key_id"],
        tenant_id=source["tenant"],
        tags=tuple(state["tags"]),
        quota_tokens=state["quota_tokens"],
        used_tokens=int(state["used_tokens"]),
        created_at=codec.from_text(state["created_at"]),
        revoked_at=codec.from_text(state["revoked_at"]),
        label=state["label"],
    )


@define
class EsKeyStore:
    """API keys (digests only) in the cluster, shared by every server."""

    cluster: Cluster

    async def find_key(self, digest: str) -> ApiKey | None:
        answer = await self.cluster.search(
            KIND,
            query={
                "bool": {"filter": [{"term": {"digest": digest}}, {"term": {"revoked": False}}]}
            },
            source_includes=["key_id"],
            size=10,
        )
        for hit in answer["hits"]["hits"]:
            found = await self.cluster.get(KIND, hit["_id"], routing=None)
            source = found["_source"] if found is not None else None
            if source is not None and not source["revoked"] and source["digest"] == digest:
                return _key(source)
        return None

    async def create_key(
        self,
        *,
        tenant: str,
        digest: str,
        tags: tuple[str, ...] = (),
        quota_tokens: int | None = None,
        label: str | None = None,
    ) -> ApiKey:
        now = datetime.now(UTC)
        key = key_record(tenant=tenant, tags=tags, quota_tokens=quota_tokens, label=label, now=now)
        doc = {
            "key_id": key.id,
            "tenant": tenant,
            "digest": digest,
            "revoked": False,
            "created_seq": time.time_ns(),
            "state": {
                "tags": list(tags),
                "quota_tokens": quota_tokens,
                "used_tokens": 0,
                "created_at": codec.to_text(now),
                "revoked_at": None,
                "label": label,
            },
        }
        # Searchable on return: the next request with this key finds it.
        await self.cluster.update(
            KIND, key.id, lambda _: (doc, None), routing=None, refresh=self.cluster.refresh
        )
        return key

    async def list_keys(self) -> list[ApiKey]:
        await self.cluster.refresh_now(KIND)
        keys: list[ApiKey] = []
        after: list[Any] | None = None
        while True:
            body: Doc = {"query": {"match_all": {}}, "sort": [{"created_seq": "asc"}], "size": 500}
            if after is not None:
                body["search_after"] = after
            answer = await self.cluster.search(KIND, **body)
            hits = answer["hits"]["hits"]
            keys += [_key(h["_source"]) for h in hits]
            if len(hits) < 500:
                return keys
            after = hits[-1]["sort"]

    async def revoke_key(self, key_id: str) -> bool:
        now = codec.to_text(datetime.now(UTC))

        def write(doc: Doc | None) -> tuple[Doc | None, bool]:
            if doc is None or doc["revoked"]:
                return None, False
            state = {**doc["state"], "revoked_at": now}
            return {**doc, "revoked": True, "state": state}, True

        return await self.cluster.update(
            KIND, key_id, write, routing=None, refresh=self.cluster.refresh
        )

    # --- quota -------------------------------------------------------------------------------

    async def charge(self, charge: TokenCharge) -> None:
        """Add the tokens to the key's usage, or raise ``QuotaExceeded`` (nothing charged)."""

        def write(doc: Doc | None) -> tuple[Doc | None, None]:
            if doc is None:
                return None, None  # no such key (a key-less import): nothing to charge
            state = doc["state"]
            check_quota(used=int(state["used_tokens"]), quota=state["quota_tokens"],
                        tokens=charge.tokens)  # fmt: skip
            if not charge.tokens:
                return None, None
            used = int(state["used_tokens"]) + charge.tokens
            return {**doc, "state": {**state, "used_tokens": used}}, None

        await self.cluster.update(KIND, charge.key_id, write, routing=None)

    async def refund(self, charge: TokenCharge) -> None:
        """Give back a charge whose write failed."""
        if not charge.tokens:
            return

        def write(doc: Doc | None) -> tuple[Doc | None, None]:
            if doc is None:
                return None, None
            state = doc["state"]
            used = max(0, int(state["used_tokens"]) - charge.tokens)
            return {**doc, "state": {**state, "used_tokens": used}}, None

        await self.cluster.update(KIND, charge.key_id, write, routing=None)
