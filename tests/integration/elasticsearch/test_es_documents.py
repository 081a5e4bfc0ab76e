"""/v3/documents and /v3/search over the Elasticsearch backend (the local noida-db server).

Elasticsearch has no ``ConversationsById``: a document is found by its id by
scanning the tenant's conversations, which this drives through the official SDK.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import supermemory

from tests.integration.elasticsearch.cluster import LocalCluster
from tests.integration.elasticsearch.conftest import new_prefix
from tests.integration.elasticsearch.test_es_http import es_settings, make_key, serving


async def test_documents_over_elasticsearch(tmp_path: Path, local_cluster: LocalCluster) -> None:
    settings = es_settings(tmp_path, local_cluster.url, new_prefix())
    key = await make_key(settings)
    async with serving(settings) as client:
        http = supermemory.DefaultAsyncHttpxClient(trust_env=False)
        async with supermemory.AsyncSupermemory(
            api_key=key, base_url=str(client.make_url("")), max_retries=0, http_client=http
        ) as sdk:
            plain = await sdk.add(content="The lighthouse keeper feeds the gulls at dawn.")
            named = await sdk.documents.add(
                content="Invoices are due on the first Monday.",
                custom_id="inv",
                container_tag="work",
            )
            assert (await sdk.documents.get(plain.id)).custom_id is None
            assert (await sdk.documents.get(named.id)).custom_id == "inv"  # by id: a scan
            assert (await sdk.documents.get("inv")).id == named.id
            listed = await sdk.documents.list(order="asc")
            assert [m.id for m in listed.memories] == [plain.id, named.id]
            found = await sdk.search.documents(q="who feeds the gulls?", limit=1)
            assert [r.document_id for r in found.results] == [plain.id]
            work = await sdk.search.documents(q="invoices", container_tag="work")
            assert [r.document_id for r in work.results] == [named.id]
            await sdk.documents.delete(named.id)
            with pytest.raises(supermemory.NotFoundError):
                await sdk.documents.get("inv")
            assert [m.id for m in (await sdk.documents.list()).memories] == [plain.id]
