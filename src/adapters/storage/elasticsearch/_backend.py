"""The Elasticsearch backend: every storage port over one cluster, shared by many servers."""

from __future__ import annotations

from attrs import define

from memoryd.adapters.storage.elasticsearch._cluster import Cluster, make_client, reachable
from memoryd.adapters.storage.elasticsearch._config import ElasticsearchConfig
from memoryd.adapters.storage.elasticsearch._conversations import EsConversationStore
from memoryd.adapters.storage.elasticsearch._index import EsMemoryIndex
from memoryd.adapters.storage.elasticsearch._keys import EsKeyStore
from memoryd.adapters.storage.elasticsearch._schema import ensure_indices
from memoryd.adapters.storage.elasticsearch._threads import EsThreadStore


@define
class ElasticsearchBackend:
    """The stores and the index over one cluster. Close it when done."""

    cluster: Cluster
    conversations: EsConversationStore
    keys: EsKeyStore
    threads: EsThreadStore
    #: Without an embedding dimension (the key store alone), it refuses to search or apply.
    index: EsMemoryIndex

    async def close(self) -> None:
        """Close the client's connections."""
        await self.cluster.client.close()


async def open_elasticsearch(
    config: ElasticsearchConfig,
    *,
    dimension: int | None,
    model_name: str | None = None,
) -> ElasticsearchBackend:
    """Connect, create what is missing (templates, indices, aliases) and return the backend.

    Without ``dimension`` (``memoryd keys``, the first key) only the key, thread
    and conversation stores are usable. Raises ``StoreUnavailable`` if the
    cluster cannot be reached, ``ConfigurationError`` if its memories index
    was built for another embedding model.
    """
    cluster = Cluster(make_client(config), config)
    try:
        with reachable():
            await cluster.client.info()
        await ensure_indices(cluster, dimension=dimension, model_name=model_name)
    except BaseException:
        await cluster.client.close()
        raise
    index = EsMemoryIndex(cluster, dimension=dimension)
    keys = EsKeyStore(cluster)
    threads = EsThreadStore(cluster, live=index.existing if dimension is not None else None)
    conversations = EsConversationStore(cluster, keys=keys, threads=threads, dimension=dimension)
    return ElasticsearchBackend(
        cluster=cluster, conversations=conversations, keys=keys, threads=threads, index=index
    )
