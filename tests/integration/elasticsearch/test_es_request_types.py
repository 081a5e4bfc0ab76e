"""Schema check: every request the backend builds, typed by the official client's request types.

The backend's own code runs over a recording fake client (``recording.py``):
templates and indices, knn+BM25 ``_msearch`` bodies for several filters, bulk
actions, ``delete_by_query`` and ``_count``, the conversation write with
``if_seq_no`` as query parameters, and the migration's requests. Each recorded
request is written as a JSON fixture and assigned to its type from
``@elastic/elasticsearch`` (``estypes.SearchRequest``, ``MsearchRequest``,
``IndicesPutIndexTemplateRequest``, ...; 8.x, pinned with TypeScript in
``tests/node-es``), then ``tsc --strict --noEmit`` checks them. Misspelt
options must fail: the negative cases inject ``num_candidate``, ``int8_hsnw``,
``k: "10"`` and ``refresh`` in a search body.

tsc comes from ``npm ci --prefix tests/node-es`` (the test command installs it);
without it this test fails rather than skips.
"""

from __future__ import annotations

import copy
import json
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memoryd.adapters.storage.elasticsearch import ElasticsearchConfig
from memoryd.adapters.storage.elasticsearch._cluster import Cluster
from memoryd.adapters.storage.elasticsearch._conversations import EsConversationStore
from memoryd.adapters.storage.elasticsearch._index import EsMemoryIndex
from memoryd.adapters.storage.elasticsearch._keys import EsKeyStore
from memoryd.adapters.storage.elasticsearch._migrate import migrate
from memoryd.adapters.storage.elasticsearch._schema import ensure_indices
from memoryd.adapters.storage.elasticsearch._threads import EsThreadStore
from memoryd.core.filters import Condition, MemoryFilter
from memoryd.core.ports import IndexChange, IndexQuery
from memoryd.testing.contract import (
    DIMENSION,
    T0,
    _change,
    _conversation,
    _stored,
    indexed,
    random_filter,
    unit,
)
from tests.integration.elasticsearch.recording import RecordingClient

pytest.importorskip("elasticsearch", reason="elasticsearch[async] is not installed")

NODE_ES = Path(__file__).resolve().parents[2] / "node-es"
Request = dict[str, Any]

#: The client API each recorded call is, and the request type that must accept it.
TYPES = {
    "info": "InfoRequest",
    "msearch": "MsearchRequest",
    "search": "SearchRequest",
    "bulk": "BulkRequest",
    "delete_by_query": "DeleteByQueryRequest",
    "count": "CountRequest",
    "index": "IndexRequest",
    "create": "CreateRequest",
    "delete": "DeleteRequest",
    "get": "GetRequest",
    "mget": "MgetRequest",
    "reindex": "ReindexRequest",
    "indices.exists": "IndicesExistsRequest",
    "indices.exists_alias": "IndicesExistsAliasRequest",
    "indices.refresh": "IndicesRefreshRequest",
    "indices.put_index_template": "IndicesPutIndexTemplateRequest",
    "indices.create": "IndicesCreateRequest",
    "indices.put_settings": "IndicesPutSettingsRequest",
    "indices.update_aliases": "IndicesUpdateAliasesRequest",
    "indices.delete": "IndicesDeleteRequest",
    "indices.get_mapping": "IndicesGetMappingRequest",
    "indices.get_alias": "IndicesGetAliasRequest",
}
#: The Python client's names for parameters whose wire (and TypeScript) name differs.
RENAMES = {
    "source": "_source",
    "source_includes": "_source_includes",
    "source_excludes": "_source_excludes",
    "from_": "from",
}


def _not_found() -> Exception:
    from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
    from elasticsearch import NotFoundError

    meta = ApiResponseMeta(
        status=404,
        http_version="1.1",
        headers=HttpHeaders(),
        duration=0.0,
        node=NodeConfig("http", "127.0.0.1", 9200),
    )
    return NotFoundError("not_found", meta, {"found": False})


def _filters() -> list[MemoryFilter]:
    rng = random.Random(9)
    return [
        MemoryFilter(tenant_id="acme"),
        MemoryFilter(
            tenant_id="acme",
            container_tags=("red", "blue"),
            conditions=(
                Condition(key="a", op="eq", value=2),
                Condition(key="b", op="ne", value=True),
                Condition(key="c", op="in", value=("x", 2.5)),
                Condition(key="d", op="gte", value=1),
                Condition(key="d", op="lt", value="x"),  # never matches: match_none
            ),
            after=T0,
            before=T0 + timedelta(days=3),
        ),
        *(random_filter(rng, "acme") for _ in range(4)),
    ]


async def record_requests() -> list[tuple[str, Request]]:
    """Run the backend's code paths over the recording client; every call it made."""
    client = RecordingClient()
    config = ElasticsearchConfig(url="http://127.0.0.1:9200", index_prefix="memoryd")
    cluster = Cluster(client, config)  # type: ignore[arg-type]
    calls: list[tuple[str, Request]] = []
    # Templates, indices and aliases.
    meta = {"_meta": {"schema_version": 1, "dimension": DIMENSION, "model": "m"}}
    client.answers["indices.get_mapping"] = lambda kw: {"memoryd-memories-v1": {"mappings": meta}}
    await ensure_indices(cluster, dimension=DIMENSION, model_name="m")
    # Searches: dense and keyword sides, several filters.
    index = EsMemoryIndex(cluster, dimension=DIMENSION)
    q = unit(np.random.default_rng(1))
    for i, memory_filter in enumerate(_filters()):
        text = "" if i == 2 else "Lisbon in May"
        await index.search(IndexQuery(filter=memory_filter, vector=q, text=text, k=10))
    # An index change: removed memories (delete_by_query, count), added ones (bulk),
    # new tags (a scan and bulk updates), new keyword contexts.
    hit = {
        "_id": "d1",
        "_source": {"tags": ["old"], "metadata": {}, "positions": [0], "text": "we go to Lisbon"},
    }
    client.answers["search"] = lambda kw: {"hits": {"hits": [{**hit, "sort": ["m1"]}]}}
    item = indexed("acme", "c1", "m2", "we go to Lisbon", q, tags=("red",), metadata={"a": 2})
    await index.apply(
        IndexChange(
            tenant_id="acme",
            conversation_id="c1",
            scope=(),
            added=(item,),
            removed_memory_ids=("m1",),
            container_tags=("red",),
            metadata={"a": 2},
            context_updates=((0, "the turn before"),),
        )
    )
    await index.clear("acme")
    # The conversation: created, then changed with if_seq_no/if_primary_term.
    keys = EsKeyStore(cluster)
    store = EsConversationStore(cluster, keys=keys, threads=EsThreadStore(cluster, live=None))

    def missing(_: Request) -> Any:
        raise _not_found()

    client.answers["get"] = missing
    conv = _conversation("acme", "c1", _stored(["hello"]))
    await store.commit(_change("created", conv, conv.messages, [item]))
    written = next(kw for api, kw in reversed(client.calls) if api == "create")["document"]
    client.answers["get"] = lambda _: {"_source": written, "_seq_no": 7, "_primary_term": 1}
    longer = _conversation("acme", "c1", _stored(["hello", "again"]))
    await store.commit(_change("appended", longer, longer.messages[1:]))
    calls += client.take()
    # The migration: v1 -> v2 for every kind, old indices deleted.
    client.answers["indices.get_alias"] = lambda kw: {f"{kw['name']}-v1": {"aliases": {}}}
    client.answers["indices.get_mapping"] = lambda kw: {kw["index"]: {"mappings": meta}}
    await migrate(cluster, force=True, delete_old=True)
    calls += client.take()
    return calls


def _wire(api: str, kwargs: Request) -> Request:
    if api == "reindex":  # its ``source`` is the body's source index, not ``_source``
        return dict(kwargs)
    return {RENAMES.get(k, k): v for k, v in kwargs.items()}


def _statements(name: str, type_: str, request: Request) -> list[tuple[str, str, Any]]:
    """``(variable, type, value)``: the request, and its body items typed one by one."""
    out: list[tuple[str, str, Any]] = [(name, type_, request)]
    if type_ == "MsearchRequest":
        searches = request["searches"]
        for j in range(0, len(searches), 2):
            head, body = searches[j], searches[j + 1]
            out.append((f"{name}_head{j}", "MsearchMultisearchHeader", head))
            out.append((f"{name}_body{j}", "MsearchMultisearchBody", body))
            out.append((f"{name}_search{j}", "SearchRequest", {**head, **body}))
    if type_ == "BulkRequest":
        ops = request["operations"]
        j = 0
        while j < len(ops):
            ((op, _),) = ops[j].items()
            out.append((f"{name}_op{j}", "BulkOperationContainer", ops[j]))
            if op == "update":
                out.append((f"{name}_update{j}", "BulkUpdateAction", ops[j + 1]))
            j += 1 if op == "delete" else 2
    return out


def typescript(statements: list[tuple[str, str, Any]]) -> str:
    lines = ['import type { estypes } from "@elastic/elasticsearch";', ""]
    for name, type_, value in statements:
        lines.append(f"export const {name}: estypes.{type_} = {json.dumps(value, indent=2)};")
    return "\n".join(lines) + "\n"


def fixtures(calls: list[tuple[str, Request]]) -> dict[str, list[tuple[str, str, Any]]]:
    """Each fixture file's statements: ``requests`` (all must pass) and the negatives."""
    good: list[tuple[str, str, Any]] = []
    for i, (api, kwargs) in enumerate(calls):
        assert api in TYPES, f"no request type for the client call {api}: add it to TYPES"
        good += _statements(f"r{i}_{api.replace('.', '_')}", TYPES[api], _wire(api, kwargs))
    knn = next(v for _, t, v in good if t == "MsearchMultisearchBody" and "knn" in v)
    template = next(
        v for _, t, v in good if t == "IndicesPutIndexTemplateRequest" and "memories" in v["name"]
    )

    def knn_with(change: Any) -> list[tuple[str, str, Any]]:
        body = copy.deepcopy(knn)
        change(body)
        return [("bad", "MsearchMultisearchBody", body), ("bad_search", "SearchRequest", body)]

    def misspelt_option(body: Request) -> None:
        body["knn"]["num_candidate"] = body["knn"].pop("num_candidates")

    def k_text(body: Request) -> None:
        body["knn"]["k"] = "10"

    def refresh(body: Request) -> None:
        body["refresh"] = True

    bad_template = copy.deepcopy(template)
    props = bad_template["template"]["mappings"]["properties"]
    props["pieces"]["properties"]["vector"]["index_options"]["type"] = "int8_hsnw"
    return {
        "requests": good,
        "num_candidate": knn_with(misspelt_option),
        "int8_hsnw": [("bad", "IndicesPutIndexTemplateRequest", bad_template)],
        "k_text": knn_with(k_text),
        "refresh_in_body": knn_with(refresh),
    }


@pytest.fixture(scope="module")
def npx() -> str:
    found = shutil.which("npx")
    if found is None or not (NODE_ES / "node_modules" / "typescript").is_dir():
        pytest.fail(
            "tsc is needed for the Elasticsearch schema check: "
            "npm ci --prefix tests/node-es (tox -e tests runs it)"
        )
    return found


@pytest.fixture(scope="module")
def checked(npx: str) -> Iterator[tuple[dict[str, Any], dict[str, list[tuple[int, str]]]]]:
    """Writes the fixtures and their .ts files, runs tsc once; errors by file."""
    import asyncio

    calls = asyncio.run(record_requests())
    files = fixtures(calls)
    (NODE_ES / "generated").mkdir(exist_ok=True)
    run = Path(tempfile.mkdtemp(prefix="run-", dir=NODE_ES / "generated"))
    try:
        sources: dict[str, list[str]] = {}
        for name, statements in files.items():
            (run / f"{name}.json").write_text(json.dumps([s[2] for s in statements], indent=2))
            text = typescript(statements)
            (run / f"{name}.ts").write_text(text)
            sources[name] = text.splitlines()
        (run / "tsconfig.json").write_text(
            json.dumps({"extends": "../../tsconfig.json", "include": ["*.ts"]})
        )
        done = subprocess.run(
            [npx, "--no-install", "tsc", "-p", str(run / "tsconfig.json"), "--strict",
             "--noEmit", "--pretty", "false"],
            cwd=NODE_ES, capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
        errors: dict[str, list[tuple[int, str]]] = {name: [] for name in files}
        last: list[tuple[int, str]] | None = None
        for line in (done.stdout + done.stderr).splitlines():
            m = re.match(r"(?:.*/)?([\w-]+)\.ts\((\d+),\d+\): error (.*)", line)
            if m and m.group(1) in errors:
                last = errors[m.group(1)]
                last.append((int(m.group(2)), m.group(3)))
            elif line.startswith(" ") and last:  # a message's next lines
                last[-1] = (last[-1][0], f"{last[-1][1]} {line.strip()}")
            elif line.strip():
                last = errors.setdefault("(other)", [])
                last.append((0, line))
        yield {"files": files, "sources": sources, "output": done.stdout}, errors
    finally:
        shutil.rmtree(run, ignore_errors=True)


def test_every_request_the_backend_builds_type_checks(checked: Any) -> None:
    info, errors = checked
    assert errors["requests"] == [], info["output"]
    assert "(other)" not in errors, info["output"]
    types = {t for _, t, _ in info["files"]["requests"]}
    # What the issue names is among them.
    assert {
        "IndicesPutIndexTemplateRequest",
        "MsearchRequest",
        "SearchRequest",
        "BulkRequest",
        "BulkUpdateAction",
        "DeleteByQueryRequest",
        "CountRequest",
        "IndexRequest",
        "ReindexRequest",
        "IndicesUpdateAliasesRequest",
    } <= types
    writes = [
        v for _, t, v in info["files"]["requests"] if t == "IndexRequest" and "if_seq_no" in v
    ]
    assert writes
    assert (writes[0]["if_seq_no"], writes[0]["if_primary_term"]) == (7, 1)


@pytest.mark.parametrize(
    ("fixture", "token"),
    [
        ("num_candidate", '"num_candidate"'),
        ("int8_hsnw", '"int8_hsnw"'),
        ("k_text", "'\"k\"' are incompatible"),
        ("refresh_in_body", '"refresh"'),
    ],
)
def test_a_misspelt_option_fails_the_check(checked: Any, fixture: str, token: str) -> None:
    info, errors = checked
    found = errors[fixture]
    assert found, f"tsc accepted {token} in {fixture}.ts"
    lines = info["sources"][fixture]
    # tsc names the injected option itself (on its line, or in the message).
    assert any(token in lines[n - 1] or token in message for n, message in found), found
