"""KeyStore over the SQLite file: tenants and API keys (digests only)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from attrs import define

from memoryd.adapters.storage.sqlite import _codec as codec
from memoryd.adapters.storage.sqlite._db import Database, transaction
from memoryd.core.auth import key_record
from memoryd.core.model import ApiKey

_KEY_COLUMNS = "id, tenant_id, tags, quota_tokens, used_tokens, created_at, revoked_at, label"


def _key(row: Sequence[Any]) -> ApiKey:
    kid, tenant, tags, quota, used, created, revoked, label = row
    return ApiKey(
        id=kid,
        tenant_id=tenant,
        tags=tuple(codec.loads(tags)),
        quota_tokens=quota,
        used_tokens=int(used),
        created_at=codec.from_text(created),
        revoked_at=codec.from_text(revoked),
        label=label,
    )


@define
class SqliteKeyStore:
    """API keys and tenants. A tenant's id is its name; keys are found by digest."""

    db: Database

    async def find_key(self, digest: str) -> ApiKey | None:
        """The live key with this digest (with its current token usage), or None."""

        def run(conn: sqlite3.Connection) -> ApiKey | None:
            row = conn.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys"  # noqa: S608 - constant columns
                " WHERE digest = ? AND revoked_at IS NULL",
                (digest,),
            ).fetchone()
            return _key(row) if row is not None else None

        return await self.db.read(run)

    async def create_key(
        self,
        *,
        tenant: str,
        digest: str,
        tags: tuple[str, ...] = (),
        quota_tokens: int | None = None,
        label: str | None = None,
    ) -> ApiKey:
        """Create a key, and its tenant if the name is new."""
        now = datetime.now(UTC)
        key = key_record(tenant=tenant, tags=tags, quota_tokens=quota_tokens, label=label, now=now)

        def run(conn: sqlite3.Connection) -> None:
            with transaction(conn, write=True):
                conn.execute(
                    "INSERT OR IGNORE INTO tenants (id, name, created_at) VALUES (?, ?, ?)",
                    (tenant, tenant, codec.to_text(now)),
                )
                conn.execute(
                    "INSERT INTO api_keys (id, tenant_id, digest, tags, quota_tokens,"
                    " used_tokens, label, created_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
                    (
                        key.id,
                        tenant,
                        digest,
                        codec.tags_json(tags),
                        quota_tokens,
                        label,
                        codec.to_text(now),
                    ),
                )

        await self.db.write(run)
        return key

    async def list_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""

        def run(conn: sqlite3.Connection) -> list[ApiKey]:
            rows = conn.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys"  # noqa: S608 - constant columns
                " ORDER BY created_at, rowid"
            ).fetchall()
            return [_key(r) for r in rows]

        return await self.db.read(run)

    async def revoke_key(self, key_id: str) -> bool:
        """Revoke a key by id; False if there is no live key by that id."""
        now = codec.to_text(datetime.now(UTC))

        def run(conn: sqlite3.Connection) -> bool:
            with transaction(conn, write=True):
                cur = conn.execute(
                    "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                    (now, key_id),
                )
                return cur.rowcount > 0

        return await self.db.write(run)
