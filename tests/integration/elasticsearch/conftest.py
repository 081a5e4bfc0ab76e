"""The local Elasticsearch-API server (one per session) and backends over it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from memoryd.adapters.storage.elasticsearch import ElasticsearchConfig
from tests.integration.elasticsearch.cluster import LocalCluster, noida_binary

_prefixes = itertools.count()


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    pytest.importorskip("elasticsearch", reason="elasticsearch[async] is not installed")
    binary = noida_binary()
    if binary is None:
        pytest.skip("noida-db is not installed (pip install noida-db==0.2.3): no local server")
    cluster = LocalCluster(binary, tmp_path_factory.mktemp("noida") / "data")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def new_prefix() -> str:
    """A fresh index prefix: each test gets its own indices on the shared server."""
    return f"t{next(_prefixes)}"


@pytest.fixture
def es_config(local_cluster: LocalCluster) -> ElasticsearchConfig:
    return ElasticsearchConfig(url=local_cluster.url, index_prefix=new_prefix(), replicas=0)


@pytest.fixture
def es_data(tmp_path: Path) -> Path:
    return tmp_path
