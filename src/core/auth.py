"""API keys: how they are made and checked. Keys are stored only as digests."""

from __future__ import annotations

import hashlib
import secrets

from attrs import define

from memoryd.core.errors import Unauthorized
from memoryd.core.model import Caller
from memoryd.core.ports import KeyStore

KEY_PREFIX = "md_"


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
