"""``memoryd es migrate``: rebuild each kind's index from the current templates.

For each kind whose alias points at an index built for another schema version
(or, for memories, another ``index_options``), or every kind with ``force``:

1. put the current index templates (the memories one with the dimension and
   model read from the old index's ``_meta``);
2. block writes on the old index (a server writing meanwhile gets an error,
   never a write that the new index would miss);
3. create ``PREFIX-KIND-v(N+1)`` from the template, refresh the old index (a
   reindex reads it through a search, which misses unrefreshed documents) and
   ``_reindex`` it into the new one (routing kept), refreshed; accepted only
   when every document was copied with no failures and the counts agree;
4. swap every moved alias in one ``_aliases`` call (remove old, add new):
   readers see the old indices or the new ones, never a mix;
5. delete the old indices only when asked (``delete_old``); otherwise they
   stay, write-blocked, for a rollback.

A run that finds every index current changes nothing (idempotent). If a step
fails before the swap, the new indices are deleted and the old ones unblocked.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from attrs import frozen

from memoryd.adapters.storage.elasticsearch._cluster import (
    Cluster,
    Doc,
    make_client,
    reachable,
    status_of,
)
from memoryd.adapters.storage.elasticsearch._codec import KEYWORDS_SCRIPT
from memoryd.adapters.storage.elasticsearch._config import ElasticsearchConfig
from memoryd.adapters.storage.elasticsearch._schema import KINDS, SCHEMA_VERSION, template
from memoryd.core.errors import ConfigurationError, StoreUnavailable

_VERSION = re.compile(r"-v(\d+)$")


@frozen(kw_only=True)
class Current:
    """The index an alias points at, and what it was built with."""

    kind: str
    index: str
    version: int
    schema_version: int | None
    dimension: int | None
    model: str | None
    index_options: str | None


@frozen(kw_only=True)
class Moved:
    """One kind moved to a new index."""

    kind: str
    old_index: str
    new_index: str
    documents: int
    deleted_old: bool


# --- request bodies (pure: the schema check types them, tests/node-es) -----------------------


def create_request(index: str) -> Doc:
    """The new index: mappings and settings come from the template its name matches."""
    return {"index": index}


def block_request(index: str, *, blocked: bool) -> Doc:
    return {"index": index, "settings": {"index": {"blocks": {"write": blocked}}}}


def reindex_request(source: str, dest: str, script: str | None = None) -> Doc:
    """Copy every document (ids and routing kept), refreshed, waiting for the end;
    each one changed by a painless ``script`` on the way, when given."""
    body: Doc = {
        "source": {"index": source},
        "dest": {"index": dest, "op_type": "index"},
        "conflicts": "abort",
        "refresh": True,
        "wait_for_completion": True,
    }
    if script is not None:
        body["script"] = {"lang": "painless", "source": script}
    return body


def upgrade_script(old: Current) -> str | None:
    """What a document of ``old`` needs on its way to the current schema (None: nothing)."""
    if old.kind == "memories" and (old.schema_version or 1) < 2:
        return KEYWORDS_SCRIPT  # schema 2 searches ``keywords``, which schema 1 lacked
    return None


def swap_request(moves: list[tuple[str, str, str]]) -> Doc:
    """One atomic ``_aliases`` call: for each ``(alias, old, new)``, remove old and add new."""
    actions: list[Doc] = []
    for alias, old, new in moves:
        actions.append({"remove": {"index": old, "alias": alias}})
        actions.append({"add": {"index": new, "alias": alias, "is_write_index": True}})
    return {"actions": actions}


# --- reading what is there -------------------------------------------------------------------


def _index_options(mapping: Doc) -> str | None:
    props = mapping.get("properties", {})
    vector = props.get("pieces", {}).get("properties", {}).get("vector", {})
    found = vector.get("index_options", {}).get("type")
    return str(found) if found is not None else None


async def current(cluster: Cluster, kind: str) -> Current | None:
    """The index behind the kind's alias (None: no alias, e.g. no memories yet)."""
    alias = cluster.config.alias(kind)
    with reachable():
        try:
            found = await cluster.client.indices.get_alias(name=alias)
        except Exception as e:
            if status_of(e) == 404:
                return None
            raise
        names = sorted(found)
        if len(names) != 1:
            raise ConfigurationError(
                f"The alias {alias} points at {len(names)} indices ({', '.join(names)}); "
                "memoryd es migrate needs exactly one: fix the alias by hand",
                details={"alias": alias, "indices": names},
            )
        (index,) = names
        mapping = (await cluster.client.indices.get_mapping(index=index))[index]["mappings"]
    meta = mapping.get("_meta", {})
    match = _VERSION.search(index)
    return Current(
        kind=kind,
        index=index,
        version=int(match.group(1)) if match else 0,
        schema_version=meta.get("schema_version"),
        dimension=meta.get("dimension"),
        model=meta.get("model"),
        index_options=_index_options(mapping) if kind == "memories" else None,
    )


def outdated(cluster: Cluster, found: Current) -> bool:
    """Whether the index differs from what the current templates build."""
    if found.schema_version != SCHEMA_VERSION:
        return True
    return found.kind == "memories" and found.index_options != cluster.config.index_options


# --- the migration ---------------------------------------------------------------------------


async def _copy(cluster: Cluster, old: Current, new: str, made: list[str]) -> int:
    """Create ``new`` from the template, copy ``old`` into it; its document count."""
    client = cluster.client
    body = template(cluster.config, old.kind, old.dimension)
    if old.kind == "memories":
        body["template"]["mappings"]["_meta"]["model"] = old.model
    await client.indices.put_index_template(name=cluster.config.alias(old.kind), **body)
    if await client.indices.exists(index=new):
        raise ConfigurationError(
            f"The index {new} exists already (an earlier migration stopped half-way?): "
            "delete it, then run memoryd es migrate again",
            details={"index": new},
        )
    await client.indices.create(**create_request(new))
    made.append(new)
    # A reindex reads the source through a search: refresh it first, or the documents
    # written since the last refresh (conversations are written without one) are missed.
    await client.indices.refresh(index=old.index)
    answer = await client.reindex(**reindex_request(old.index, new, upgrade_script(old)))
    total = int(answer.get("total", 0))
    copied = int(answer.get("created", 0)) + int(answer.get("updated", 0))
    if answer.get("failures") or answer.get("timed_out") or copied != total:
        raise StoreUnavailable(
            f"Reindexing {old.index} into {new} copied {copied} of {total} documents; "
            "nothing was switched: run memoryd es migrate again",
            details={"index": old.index, "failures": answer.get("failures")},
        )
    await client.indices.refresh(index=[old.index, new])
    before = int((await client.count(index=old.index))["count"])
    after = int((await client.count(index=new))["count"])
    if before != after:
        raise StoreUnavailable(
            f"{new} holds {after} documents, {old.index} {before}; nothing was switched: "
            "run memoryd es migrate again",
            details={"index": new},
        )
    return after


async def migrate(
    cluster: Cluster,
    *,
    force: bool = False,
    delete_old: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Moved]:
    """Move every outdated kind (every kind with ``force``) to a new index; what moved."""
    config = cluster.config
    client = cluster.client
    todo: list[Current] = []
    for kind in KINDS:
        found = await current(cluster, kind)
        if found is None:
            progress(f"{kind}: no alias {config.alias(kind)}; nothing to migrate")
        elif force or outdated(cluster, found):
            todo.append(found)
        else:
            progress(f"{kind}: {found.index} is current (schema {SCHEMA_VERSION})")
    if not todo:
        return []
    made: list[str] = []
    blocked: list[str] = []
    counts: list[int] = []
    try:
        with reachable():
            for old in todo:
                new = config.index_name(old.kind, old.version + 1)
                await client.indices.put_settings(**block_request(old.index, blocked=True))
                blocked.append(old.index)
                progress(f"{old.kind}: copying {old.index} into {new}")
                counts.append(await _copy(cluster, old, new, made))
            moves = [(config.alias(o.kind), o.index, n) for o, n in zip(todo, made, strict=True)]
            await client.indices.update_aliases(**swap_request(moves))
    except BaseException:
        with reachable():
            for index in made:
                await client.options(ignore_status=404).indices.delete(index=index)
            for index in blocked:
                await client.indices.put_settings(**block_request(index, blocked=False))
        raise
    out = []
    for old, new, count in zip(todo, made, counts, strict=True):
        if delete_old:
            with reachable():
                await client.indices.delete(index=old.index)
        kept = f"deleted {old.index}" if delete_old else f"{old.index} kept, read-only"
        progress(f"{old.kind}: {config.alias(old.kind)} -> {new} ({count} documents); {kept}")
        out.append(
            Moved(
                kind=old.kind,
                old_index=old.index,
                new_index=new,
                documents=count,
                deleted_old=delete_old,
            )
        )
    return out


async def migrate_url(
    config: ElasticsearchConfig,
    *,
    force: bool = False,
    delete_old: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Moved]:
    """``migrate`` over a client of its own (the command line's entry point)."""
    cluster = Cluster(make_client(config), config)
    try:
        with reachable():
            await cluster.client.info()
        return await migrate(cluster, force=force, delete_old=delete_old, progress=progress)
    finally:
        await cluster.client.close()
