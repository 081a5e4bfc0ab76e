"""The one client of a backend, and the request patterns every store uses.

- Errors: a cluster that cannot be reached, times out or keeps answering
  429/5xx raises ``StoreUnavailable`` (503 "Database connection failed");
  other API errors are bugs and propagate.
- ``bulk``: per-item results are read; items answered 429 or 5xx are sent
  again (with backoff), any other failed item is reported (``BulkRejected``).
- ``forget``: refresh, ``delete_by_query`` with ``refresh=true``, accepted only
  when ``deleted == total`` with no failures, repeated until a ``_count``
  after a refresh is 0 (``conflicts=proceed`` alone skips documents).
- ``update``: read a document, change it, write it back with
  ``if_seq_no``/``if_primary_term``, and start again on a conflict: no
  update is lost when two servers race.

The client (``elasticsearch[async]``) is imported when a backend opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define

from memoryd.adapters.storage.elasticsearch._config import ElasticsearchConfig
from memoryd.core.errors import StoreUnavailable

if TYPE_CHECKING:
    from elasticsearch import AsyncElasticsearch

log = logging.getLogger(__name__)

T = TypeVar("T")
Doc = dict[str, Any]

#: Statuses worth trying again: the cluster is busy or a node is failing.
RETRYABLE = frozenset({429, 502, 503, 504})
#: Passes of ``forget`` before it gives up (each pass removes what the last one missed).
FORGET_PASSES = 10


class BulkRejected(Exception):
    """Items of a bulk request failed with a 4xx: a bug (a mapping, a document), not an outage."""

    def __init__(self, errors: Sequence[Any]) -> None:
        super().__init__(f"{len(errors)} bulk item(s) rejected; first: {errors[0]!r}")
        self.errors = list(errors)


def doc_id(*parts: str) -> str:
    """A deterministic document id: a digest of the parts (any text, any length)."""
    blob = json.dumps(list(parts), ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.blake2b(blob, digest_size=20).hexdigest()


def make_client(config: ElasticsearchConfig) -> AsyncElasticsearch:
    """The client with explicit timeouts, retries and pool size (imported here: it is heavy)."""
    from elasticsearch import AsyncElasticsearch

    auth: dict[str, Any] = {}
    if config.api_key:
        auth["api_key"] = config.api_key
    elif config.username is not None:
        auth["basic_auth"] = (config.username, config.password or "")
    return AsyncElasticsearch(
        config.url,
        request_timeout=config.request_timeout,
        max_retries=config.max_retries,
        retry_on_timeout=True,
        retry_on_status=tuple(sorted(RETRYABLE)),
        connections_per_node=config.connections,
        **auth,
    )


def status_of(error: BaseException) -> int | None:
    """The HTTP status of an API error, else None."""
    from elasticsearch import ApiError

    if isinstance(error, ApiError):
        return int(error.meta.status)
    return None


@contextlib.contextmanager
def reachable() -> Iterator[None]:
    """Turn "the cluster cannot answer" into ``StoreUnavailable``; let API errors through."""
    from elasticsearch import ApiError, TransportError

    try:
        yield
    except ApiError as e:
        if int(e.meta.status) in RETRYABLE or int(e.meta.status) >= 500:
            log.warning("Elasticsearch answered %s: %s", e.meta.status, e)
            raise StoreUnavailable() from e
        raise
    except TransportError as e:  # connection refused, timeout, TLS
        log.warning("Elasticsearch cannot be reached: %r", e)
        raise StoreUnavailable() from e
    except (TimeoutError, OSError) as e:
        raise StoreUnavailable() from e


#: A change function's answer: the new document (or ``DELETE``, or None: write
#: nothing), and the value ``update`` returns.
DELETE: Doc = {"__delete__": True}


@define
class Cluster:
    """The client, the settings, and the request patterns of the stores."""

    client: AsyncElasticsearch
    config: ElasticsearchConfig
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    @property
    def refresh(self) -> str:
        """The ``refresh`` parameter of writes that must be searchable when they return."""
        return self.config.refresh

    async def get(self, kind: str, id_: str, *, routing: str | None, **kw: Any) -> Any:
        """The document (realtime) or None."""
        with reachable():
            try:
                return await self.client.get(
                    index=self.config.alias(kind), id=id_, routing=routing, **kw
                )
            except Exception as e:
                if status_of(e) == 404:
                    return None
                raise

    async def refresh_now(self, kind: str) -> None:
        with reachable():
            await self.client.indices.refresh(index=self.config.alias(kind))

    async def search(self, kind: str, **body: Any) -> Any:
        with reachable():
            return await self.client.search(index=self.config.alias(kind), **body)

    async def bulk(self, kind: str, actions: Sequence[tuple[Doc, Doc | None]]) -> None:
        """Send the actions (``(action, source)``), retrying the items refused with 429/5xx.

        A delete of a missing document is fine (idempotent). Raises ``BulkRejected``
        for items refused with another 4xx, ``StoreUnavailable`` if retries run out.
        """
        alias = self.config.alias(kind)
        pending = list(actions)
        delay = 0.1
        for attempt in range(self.config.max_retries + 1):
            body: list[Doc] = []
            for action, source in pending:
                ((op, meta),) = action.items()
                body.append({op: {"_index": alias, **meta}})
                if source is not None:
                    body.append(source)
            with reachable():
                answer = await self.client.bulk(operations=body, refresh=self.refresh)
            if not answer["errors"]:
                return
            retry: list[tuple[Doc, Doc | None]] = []
            rejected: list[Any] = []
            for sent, item in zip(pending, answer["items"], strict=True):
                ((op, result),) = item.items()
                status = int(result.get("status", 500))
                if status < 300 or (op == "delete" and status == 404):
                    continue
                if status in RETRYABLE or status >= 500:
                    retry.append(sent)
                else:
                    rejected.append(result.get("error", result))
            if rejected:
                raise BulkRejected(rejected)
            if not retry:
                return
            log.warning(
                "%d bulk item(s) refused (429/5xx), try %d of %d",
                len(retry),
                attempt + 1,
                self.config.max_retries + 1,
            )
            pending = retry
            await self.sleep(delay)
            delay *= 2
        raise StoreUnavailable()

    async def forget(self, kind: str, query: Doc, *, routing: str | None) -> int:
        """Delete every document matching ``query`` provably; how many were deleted.

        Refresh first (a delete_by_query misses what is not refreshed), accept a
        pass only when it deleted all it found with no failures, and repeat until
        a count after a refresh finds none.
        """
        alias = self.config.alias(kind)
        deleted = 0
        with reachable():
            for _ in range(FORGET_PASSES):
                await self.client.indices.refresh(index=alias)
                answer = await self.client.delete_by_query(
                    index=alias, query=query, routing=routing, refresh=True, conflicts="proceed"
                )
                total = int(answer.get("total", 0))
                done = int(answer.get("deleted", 0))
                deleted += done
                if answer.get("failures") or done != total:
                    log.warning(
                        "delete_by_query on %s deleted %d of %d (failures: %r); again",
                        alias,
                        done,
                        total,
                        answer.get("failures"),
                    )
                    continue
                await self.client.indices.refresh(index=alias)
                left = await self.client.count(index=alias, query=query, routing=routing)
                if int(left["count"]) == 0:
                    return deleted
        raise StoreUnavailable(
            "The cluster did not finish deleting; send the request again",
            details={"index": alias},
        )

    async def update(
        self,
        kind: str,
        id_: str,
        change: Callable[[Doc | None], tuple[Doc | None, T]],
        *,
        routing: str | None,
        refresh: str | bool = False,
    ) -> T:
        """Read-modify-write one document with optimistic concurrency; ``change``'s value.

        ``change`` gets the current source (None if there is none) and returns
        the new source (``DELETE`` to delete it, None to leave it) and a value.
        On a version conflict it is called again on the newer document.
        """
        alias = self.config.alias(kind)
        for _ in range(self.config.conflict_retries):
            found = await self.get(kind, id_, routing=routing)
            current = found["_source"] if found is not None else None
            new, value = change(current)
            if new is None:
                return value
            try:
                with reachable():
                    if new is DELETE:
                        if found is not None:
                            await self.client.delete(
                                index=alias,
                                id=id_,
                                routing=routing,
                                if_seq_no=found["_seq_no"],
                                if_primary_term=found["_primary_term"],
                                refresh=refresh,
                            )
                    elif found is None:
                        await self.client.create(
                            index=alias, id=id_, routing=routing, document=new, refresh=refresh
                        )
                    else:
                        await self.client.index(
                            index=alias,
                            id=id_,
                            routing=routing,
                            document=new,
                            if_seq_no=found["_seq_no"],
                            if_primary_term=found["_primary_term"],
                            refresh=refresh,
                        )
                return value
            except Exception as e:
                if status_of(e) == 409:
                    continue  # another writer was first: change its version
                if new is DELETE and status_of(e) == 404:
                    return value
                raise
        raise StoreUnavailable(
            "Too many servers are writing the same record at once; send the request again",
            details={"index": alias},
        )
