"""The storage contract (``memoryd.testing.contract``) over the Elasticsearch backend.

Against the local noida-db server always; against a real cluster too when
``MEMORYD_TEST_ELASTICSEARCH_URL`` is set (each test on indices of its own prefix,
deleted afterwards).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from memoryd.adapters.storage.elasticsearch import (
    SCHEMA_VERSION,
    ElasticsearchConfig,
    open_elasticsearch,
)
from memoryd.adapters.storage.elasticsearch._schema import KINDS
from memoryd.testing.contract import *  # noqa: F403 - the contract's tests run here
from memoryd.testing.contract import DIMENSION, OpenBackend

REAL = os.environ.get("MEMORYD_TEST_ELASTICSEARCH_URL", "")


def opener(config: ElasticsearchConfig) -> OpenBackend:
    @contextlib.asynccontextmanager
    async def open_cluster() -> AsyncIterator[Any]:
        backend = await open_elasticsearch(config, dimension=DIMENSION, model_name="contract")
        try:
            yield backend
        finally:
            await backend.close()

    return open_cluster


async def _drop(config: ElasticsearchConfig) -> None:
    from elasticsearch import AsyncElasticsearch

    client = AsyncElasticsearch(config.url)
    try:
        for kind in KINDS:  # by name: wildcard deletes are refused by default
            await client.indices.delete(
                index=config.index_name(kind, SCHEMA_VERSION), ignore_unavailable=True
            )
            await client.options(ignore_status=404).indices.delete_index_template(
                name=config.alias(kind)
            )
    finally:
        await client.close()


@pytest.fixture(params=["local", "real"])
def open_backend(request: pytest.FixtureRequest) -> Iterator[OpenBackend]:
    if request.param == "local":
        config: ElasticsearchConfig = request.getfixturevalue("es_config")
        yield opener(config)
        return
    if not REAL:
        pytest.skip("MEMORYD_TEST_ELASTICSEARCH_URL is not set: no real cluster to run against")
    config = ElasticsearchConfig(url=REAL, index_prefix=f"memoryd-test-{uuid.uuid4().hex[:8]}")
    yield opener(config)
    import asyncio

    asyncio.run(_drop(config))
