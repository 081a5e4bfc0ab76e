"""API keys: how they are made and checked. Keys are stored only as digests."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime

from attrs import define

from memoryd.core.errors import Unauthorized
from memoryd.core.model import ApiKey, Caller
from memoryd.core.ports import KeyStore

KEY_PREFIX = "md_"


def key_record(
    *,
    tenant: str,
    tags: tuple[str, ...],
    quota_tokens: int | None,
    label: str | None,
    now: datetime,
) -> ApiKey:
    """The record of a new key (a fresh id; nothing spent), as every key store creates it."""
    return ApiKey(
        id=uuid.uuid4().hex[:12],
        tenant_id=tenant,
        tags=tags,
        quota_tokens=quota_tokens,
        created_at=now,
        label=label,
    )


def new_key() -> str:
    """A fresh API key: ``md_`` and 43 URL-safe characters (256 bits of randomness)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    """The stored form of a key. Keys are random, so a plain SHA-256 is enough."""
    return hashlib.sha256(key.encode()).hexdigest()


@define
class Authenticator:
    """Turns a bearer token into the caller it belongs to."""

    keys: KeyStore

    async def authenticate(self, token: str | None) -> Caller:
        if not token:
            raise Unauthorized()
        key = await self.keys.find_key(digest(token))
        if key is None:
            raise Unauthorized()
        return Caller(
            tenant_id=key.tenant_id,
            key_id=key.id,
            tags=key.tags,
            quota_tokens=key.quota_tokens,
            used_tokens=key.used_tokens,
        )
