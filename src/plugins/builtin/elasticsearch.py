"""The built-in storage backend ``elasticsearch``: every server's state in one cluster.

Set ``storage = "elasticsearch"`` and ``elasticsearch_url``; the other
``elasticsearch_*`` settings have defaults (docs/elasticsearch.md). The
client is imported when the backend opens (``pip install 'memoryd[elasticsearch]'``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from memoryd.core.errors import ConfigurationError
from memoryd.core.ports import StorageBackend
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl
from memoryd.plugins.registry import RegisterStorage
from memoryd.settings import Settings


def config_of(settings: Settings) -> Any:
    """The backend's ``ElasticsearchConfig`` from the ``elasticsearch_*`` settings."""
    from memoryd.adapters.storage.elasticsearch import ElasticsearchConfig

    if not settings.elasticsearch_url:
        raise ConfigurationError(
            'storage = "elasticsearch" needs elasticsearch_url (MEMORYD_ELASTICSEARCH_URL), '
            "the cluster's URL, e.g. http://127.0.0.1:9200",
            details={"setting": "elasticsearch_url"},
        )
    try:
        return ElasticsearchConfig(
            url=settings.elasticsearch_url,
            api_key=settings.elasticsearch_api_key,
            username=settings.elasticsearch_username,
            password=settings.elasticsearch_password,
            index_prefix=settings.elasticsearch_index_prefix,
            num_candidates=settings.elasticsearch_num_candidates,
            index_options=settings.elasticsearch_index_options,
            request_timeout=settings.elasticsearch_request_timeout,
            max_retries=settings.elasticsearch_max_retries,
            connections=settings.elasticsearch_connections,
            refresh=settings.elasticsearch_refresh,
            shards=settings.elasticsearch_shards,
            replicas=settings.elasticsearch_replicas,
        )
    except ValueError as e:
        raise ConfigurationError(
            f"Invalid elasticsearch_* setting: {e}", details={"setting": "elasticsearch_*"}
        ) from e


@contextlib.asynccontextmanager
async def open_backend(context: PluginContext[Any]) -> AsyncIterator[StorageBackend]:
    """The stores and the index in the cluster; the stores alone without an embedder."""
    try:
        from memoryd.adapters.storage.elasticsearch import open_elasticsearch
    except ImportError as e:  # pragma: no cover - the extra is missing
        raise ConfigurationError(
            'storage = "elasticsearch" needs the Elasticsearch client: '
            "pip install 'memoryd[elasticsearch]'",
            details={"setting": "storage"},
        ) from e
    embedder = context.embedder
    backend = await open_elasticsearch(
        config_of(context.settings),
        dimension=embedder.dimension if embedder is not None else None,
        model_name=embedder.model_name if embedder is not None else None,
    )
    try:
        yield backend
    finally:
        await backend.close()


@hookimpl
def memoryd_register_storage(register: RegisterStorage) -> None:
    register("elasticsearch", open_backend)


async def migrate_command(settings: Settings, *, force: bool, delete_old: bool) -> int:
    """``memoryd es migrate``: a line per kind; 0 when done or nothing was needed."""
    from memoryd.adapters.storage.elasticsearch._migrate import migrate_url

    moved = await migrate_url(
        config_of(settings),
        force=force,
        delete_old=delete_old,
        progress=lambda line: print(line, flush=True),
    )
    print(
        f"Migrated {len(moved)} indices."
        if moved
        else "Nothing to migrate: every index is current."
    )
    return 0
