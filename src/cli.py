"""The ``memoryd`` command: serve, keys, ingest, search, chat, config, plugins."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from memoryd import __version__
from memoryd.adapters.logs import configure_logging
from memoryd.core.errors import ConfigurationError, MemorydError
from memoryd.settings import Settings, load_settings


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="a TOML settings file ($MEMORYD_CONFIG)")
    parser.add_argument("--data-dir", type=Path, help="where the SQLite file lives")


def _client(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="the server's URL ($MEMORYD_URL; default from settings)")
    parser.add_argument("--key", help="an API key ($MEMORYD_API_KEY)")


def _es_parser(sub: Any) -> None:
    es = sub.add_parser("es", help="Elasticsearch backend operations: docs/elasticsearch.md")
    es_sub = es.add_subparsers(dest="es_command", required=True)
    migrate = es_sub.add_parser("migrate", help="rebuild outdated indices, swap the aliases")
    _common(migrate)
    migrate.add_argument("--force", action="store_true", help="rebuild every index")
    migrate.add_argument("--delete-old", action="store_true", help="delete the old indices")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memoryd", description="A self-hosted memory server for AI applications."
    )
    parser.add_argument("--version", action="version", version=f"memoryd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    _common(serve)
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8420; 0 picks a free one)")

    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; prints it as the last line")
    _common(create)
    create.add_argument("--tenant", required=True, help="the tenant the key belongs to")
    create.add_argument("--tag", action="append", default=[], help="limit the key to a tag")
    create.add_argument("--quota-tokens", type=int, help="token quota for writes")
    create.add_argument("--label", help="a note to recognise the key by")
    listing = keys_sub.add_parser("list", help="list keys (never the keys themselves)")
    _common(listing)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    _common(revoke)
    revoke.add_argument("key_id")

    ingest = sub.add_parser("ingest", help="send conversations from a JSON or JSONL file")
    _client(ingest)
    _common(ingest)
    ingest.add_argument("file", type=Path, help="JSON (one object or an array) or JSONL")
    ingest.add_argument("--tag", action="append", default=[], help="add a container tag")

    search = sub.add_parser("search", help="search memories")
    _client(search)
    _common(search)
    search.add_argument("query")
    search.add_argument("--tag", action="append", default=[], help="search within a tag")
    search.add_argument("--limit", type=int, default=5)
    search.add_argument("--json", action="store_true", help="print the raw JSON answer")

    chat = sub.add_parser("chat", help="ask a question; the answer cites your memories")
    _client(chat)
    _common(chat)
    chat.add_argument("question")
    chat.add_argument("--thread", help="continue this thread")

    reindex = sub.add_parser("reindex", help="rebuild the search index from the store")
    _common(reindex)
    reindex.add_argument("--tenant", help="only this tenant's memories (default: every tenant)")
    reindex.add_argument(
        "--embedder",
        metavar="NAME",
        help="re-embed every memory with this embedder first (server stopped; SQLite only)",
    )

    _es_parser(sub)
    config = sub.add_parser("config", help="print the effective settings (secrets hidden)")
    _common(config)

    plugins = sub.add_parser("plugins", help="list the loaded plugins: name, version, hooks")
    _common(plugins)
    plugins.add_argument("--json", action="store_true", help="print them as JSON")

    _mcp_parser(sub)
    return parser


def _mcp_parser(sub: Any) -> None:
    mcp = sub.add_parser("mcp", help="an MCP server (stdio) for desktop clients: docs/mcp.md")
    _client(mcp)
    _common(mcp)
    mcp.add_argument("--container-tag", action="append", default=[], help="a default tag")
    mcp.add_argument("--http", action="store_true", help="serve streamable HTTP, not stdio")
    mcp.add_argument("--port", dest="mcp_port", metavar="N", type=int, default=8421, help="--http")


def settings_from(args: argparse.Namespace) -> Settings:
    flags: dict[str, Any] = {
        "data_dir": getattr(args, "data_dir", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
    }
    return load_settings(flags=flags, config_file=getattr(args, "config", None))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
        configure_logging(settings.log_level, settings.log_format)
        return asyncio.run(_run(args, settings))
    except KeyboardInterrupt:
        return 130
    except MemorydError as exc:
        print(f"memoryd: {exc.message}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigurationError) else 1


async def _run(args: argparse.Namespace, settings: Settings) -> int:  # noqa: PLR0911
    from memoryd import bootstrap
    from memoryd.clientcmds import chat_text, ingest_file, search_text

    if args.command == "serve":
        await bootstrap.serve(settings)
        return 0
    if args.command in {"config", "plugins"}:
        return _inspect(args, settings)
    if args.command == "es":
        from memoryd.plugins.builtin.elasticsearch import migrate_command

        return await migrate_command(settings, force=args.force, delete_old=args.delete_old)
    if args.command in {"keys", "reindex"}:
        return await (_keys if args.command == "keys" else _reindex)(args, settings)
    url = args.url or os.environ.get("MEMORYD_URL") or f"http://{settings.host}:{settings.port}"
    key = args.key or os.environ.get("MEMORYD_API_KEY")
    if not key:
        raise ConfigurationError("No API key: pass --key or set MEMORYD_API_KEY")
    if args.command == "mcp":
        return await _mcp(args, url, key)
    if args.command == "ingest":
        return await ingest_file(url, key, args.file, tags=args.tag)
    if args.command == "chat":
        return await chat_text(url, key, args.question, thread=args.thread)
    return await search_text(url, key, args.query, tags=args.tag, limit=args.limit, raw=args.json)


async def _mcp(args: argparse.Namespace, url: str, key: str) -> int:
    """``mcp``: the MCP server over stdio (or streamable HTTP), a client of ``url``."""
    try:
        from memoryd.mcp_server import serve_mcp  # the mcp SDK: only for this command
    except ModuleNotFoundError as exc:
        needs = f"memoryd mcp needs {exc.name}: pip install 'memoryd[mcp]'"
        raise ConfigurationError(needs) from None
    port = args.mcp_port if args.http else None
    return await serve_mcp(url, key, tags=args.container_tag, http_port=port)


def _inspect(args: argparse.Namespace, settings: Settings) -> int:
    """``config`` and ``plugins``: they load the plugins (checking their settings), no more."""
    from memoryd import bootstrap

    host = bootstrap.plugin_host(settings)
    if args.command == "config":
        shown = settings.redacted()
        # Each plugin's section as validated (its secrets hidden), not the raw input.
        shown["plugin_settings"] = host.configs()
        print(json.dumps(shown, indent=2, default=str))
        return 0
    infos = host.describe()
    if args.json:
        print(json.dumps([attrs.asdict(i) for i in infos], indent=2))
        return 0
    for info in infos:
        made = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info.registers.items())
        print(f"{info.name} {info.version} ({info.source})" + (f", {made}" if made else ""))
        for hook in info.hooks:
            print(f"    {hook}")
    return 0


async def _reindex(args: argparse.Namespace, settings: Settings) -> int:
    """``reindex``: every memory from the store into the index, a line per tenant."""
    from memoryd import bootstrap
    from memoryd.core.indexer import ReindexProgress, reindex

    def report(p: ReindexProgress) -> None:
        print(
            f"[{p.done}/{p.total}] tenant {p.tenant_id}: "
            f"{p.conversations} conversations, {p.memories} memories",
            flush=True,
        )

    if args.embedder is not None:
        if args.tenant is not None:
            raise ConfigurationError("--embedder re-embeds every tenant: leave out --tenant")
        settings = attrs.evolve(settings, embedder=args.embedder)
    host = bootstrap.plugin_host(settings)
    async with bootstrap.embedder(settings) as embedder:
        if args.embedder is not None:
            await _reembed(settings, embedder)
        async with host.open_storage(
            settings.storage, settings=settings, embedder=embedder
        ) as backend:
            last = await reindex(
                backend.conversations, backend.index, tenant_id=args.tenant, progress=report
            )
    print("Reindexed." if last is not None else "Nothing to reindex: the store is empty.")
    if args.embedder is not None:
        print(
            f"The data dir is now embedded with {embedder.model_name!r}: start memoryd with "
            f'embedder = "{args.embedder}" (or MEMORYD_EMBEDDER={args.embedder}).'
        )
    return 0


async def _reembed(settings: Settings, embedder: Any) -> None:
    """``reindex --embedder``: every conversation's memories built again and re-embedded.

    The file is marked as switching first and records the new model only once
    every conversation is done (``adapters/storage/sqlite/_switch.py``).
    """
    from tqdm import tqdm

    from memoryd import bootstrap
    from memoryd.core.reembed import ReembedProgress, reembed

    async with (
        bootstrap.model_switch(settings, embedder) as switch,
        bootstrap.part_handlers(settings, embedder) as handlers,
        bootstrap.filters(settings, embedder) as filters,
    ):
        print(
            f"Re-embedding {switch.conversations} conversations from "
            f"{switch.previous_model!r} to {embedder.model_name!r}",
            flush=True,
        )
        with tqdm(total=switch.conversations, unit="conv", file=sys.stderr) as bar:

            def advance(p: ReembedProgress) -> None:
                bar.set_postfix(memories=p.memories, refresh=False)
                bar.update(1)

            last = await reembed(
                switch.backend.conversations,
                embedder,
                policy=bootstrap.memory_policy(settings),
                part_handlers=handlers,
                filters=filters.drafts,
                progress=advance,
            )
        await switch.backend.finish_model_switch()
    done = f"{last.conversations} conversations, {last.memories} memories" if last else "nothing"
    print(f"Re-embedded {done} with {embedder.model_name!r}.", flush=True)


async def _keys(args: argparse.Namespace, settings: Settings) -> int:
    from memoryd import bootstrap
    from memoryd.core.auth import digest, new_key

    async with bootstrap.key_store(settings) as keys:
        if args.keys_command == "create":
            if args.quota_tokens is not None and args.quota_tokens < 0:
                raise ConfigurationError("--quota-tokens must be 0 or more")
            plaintext = new_key()
            made = await keys.create_key(
                tenant=args.tenant,
                digest=digest(plaintext),
                tags=tuple(args.tag),
                quota_tokens=args.quota_tokens,
                label=args.label,
            )
            scope = ", ".join(made.tags) if made.tags else "all tags"
            quota = made.quota_tokens if made.quota_tokens is not None else "unlimited"
            print(f"Created key {made.id} for tenant {made.tenant_id} ({scope}; quota {quota}).")
            print("Store it now: it is shown only once.")
            print(plaintext)
        elif args.keys_command == "list":
            print(f"{'ID':<14}{'TENANT':<20}{'TAGS':<24}{'USED/QUOTA':<20}{'STATUS':<10}LABEL")
            for k in await keys.list_keys():
                quota = f"{k.used_tokens}/{k.quota_tokens if k.quota_tokens is not None else '-'}"
                status = "revoked" if k.revoked_at else "active"
                tags = ",".join(k.tags) or "*"
                print(
                    f"{k.id:<14}{k.tenant_id:<20}{tags:<24}{quota:<20}{status:<10}{k.label or ''}"
                )
        elif not await keys.revoke_key(args.key_id):
            print(f"memoryd: no active key with id {args.key_id}", file=sys.stderr)
            return 1
        else:
            print(f"Revoked key {args.key_id}.")
    return 0
