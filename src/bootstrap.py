"""The composition root: the one module that names concrete adapters.

``Container`` (dependency-injector) declares how each port is built from
``Settings``; resources that hold threads, files, models or connections are
``providers.Resource`` async generators, opened by ``create_app`` before the
app serves and closed on its cleanup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import aiohttp
from aiohttp import web
from dependency_injector import containers, providers

from memoryd import __version__
from memoryd.adapters.clock import SystemClock
from memoryd.adapters.http import HttpConfig, Services, build_app
from memoryd.core.auth import Authenticator, digest, new_key
from memoryd.core.chat import DEFAULT_SYSTEM_PROMPT, ChatPolicy, ChatService
from memoryd.core.conversations import ConversationService
from memoryd.core.errors import ConfigurationError
from memoryd.core.ingest import IngestService
from memoryd.core.memories import MemoryPolicy
from memoryd.core.ports import ChatModel, Embedder, KeyStore, TokenCounter
from memoryd.core.retrieval import ContextRule, FusionSettings, SearchCache, SearchService
from memoryd.plugins.host import PluginHost
from memoryd.settings import Settings

log = logging.getLogger("memoryd")


# --- resources -----------------------------------------------------------------------------------


async def http_session() -> AsyncGenerator[aiohttp.ClientSession, None]:
    """One client session per app, for the OpenAI-compatible backends."""
    session = aiohttp.ClientSession()
    try:
        yield session
    finally:
        await session.close()


async def token_counter(settings: Settings) -> AsyncGenerator[TokenCounter, None]:
    from memoryd.adapters.tokens import tiktoken_counter

    counter = tiktoken_counter(settings.token_encoding)
    await asyncio.to_thread(counter.load)
    yield counter


async def embedder_resource(
    settings: Settings, session: aiohttp.ClientSession | None = None
) -> AsyncGenerator[Embedder, None]:
    """The configured embedder, loaded (local) or probed (remote)."""
    if settings.embedder == "openai":
        from memoryd.adapters.embedding import OpenAIEmbedder

        if not settings.embedding_url:
            raise ConfigurationError("embedder = 'openai' needs embedding_url (…/v1)")
        remote = OpenAIEmbedder(
            base_url=settings.embedding_url,
            model=settings.embedding_model,
            api_key=settings.embedding_api_key,
            dimension=settings.embedding_dimension,
            timeout=settings.embedding_timeout,
            batch_size=settings.embedding_batch_size,
            session=session,
        )
        try:
            await remote.probe()
            yield remote
        finally:
            await remote.aclose()
        return
    from memoryd.adapters.embedding import local_embedder

    local = local_embedder(
        settings.embedder,
        threads=settings.embedding_threads,
        max_batch=settings.embedding_batch_size,
    )
    try:
        await asyncio.to_thread(local.load)
        yield local
    finally:
        await local.aclose()


async def storage_resource(settings: Settings, embedder: Embedder) -> AsyncGenerator[Any, None]:
    """The storage backend: the stores and the index (embedded SQLite by default)."""
    from memoryd.adapters.storage.sqlite import open_sqlite

    backend = await open_sqlite(
        settings.database_path, model_name=embedder.model_name, dimension=embedder.dimension
    )
    try:
        yield backend
    finally:
        await backend.close()


async def chat_model_resource(
    settings: Settings, session: aiohttp.ClientSession | None = None
) -> AsyncGenerator[ChatModel, None]:
    """The configured chat model (``llm``); the embedded llama.cpp is started and stopped here.

    ``auto`` is ``llamacpp`` when xllamacpp and a GGUF model are installed, else
    ``extractive``. llama.cpp loads in a thread, off the event loop.
    """
    from memoryd.adapters import llm

    choice = settings.llm
    if choice == "auto":
        usable = await asyncio.to_thread(llm.llamacpp_available, settings.llm_model_path)
        choice = "llamacpp" if usable else "extractive"
        log.info("llm = auto: using %s", choice)
    if choice == "extractive":
        yield llm.ExtractiveChatModel(context_window=settings.llm_context_window)
        return
    if choice == "openai":
        if not settings.llm_url:
            raise ConfigurationError(
                'llm = "openai" needs llm_url, the server\'s OpenAI base URL ending in /v1 '
                "(for Ollama: http://127.0.0.1:11434/v1)",
                details={"setting": "llm_url"},
            )
        remote = llm.OpenAIChatModel(
            base_url=settings.llm_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key,
            context_window=settings.llm_context_window,
            connect_timeout=settings.llm_connect_timeout,
            read_timeout=settings.llm_read_timeout,
            connect_retries=settings.llm_connect_retries,
            temperature=settings.llm_temperature,
            session=session,
        )
        try:
            yield remote
        finally:
            await remote.aclose()
        return
    server = llm.EmbeddedLlamaServer(
        model_path=settings.llm_model_path,
        threads=settings.llm_threads,
        context_window=settings.llm_context_window,
    )
    embedded = server.chat_model(
        session=session,
        connect_timeout=settings.llm_connect_timeout,
        read_timeout=settings.llm_read_timeout,
        temperature=settings.llm_temperature,
    )
    await asyncio.to_thread(server.start)
    try:
        yield embedded
    finally:
        await embedded.aclose()
        await asyncio.to_thread(server.stop)


#: The prompt's headroom (``chat_token_headroom``) by backend, when it is not set: SmolLM2's
#: tokenizer counts 1.2 (English) to 1.6 (Latin, other scripts) times as many tokens as
#: cl100k_base; OpenAI-compatible servers run all kinds of models.
EMBEDDED_HEADROOM = 0.4
REMOTE_HEADROOM = 0.25


def chat_policy(settings: Settings, model: ChatModel) -> ChatPolicy:
    from memoryd.adapters.llm import LlamaCppChatModel

    headroom = settings.chat_token_headroom
    if headroom is None:
        headroom = EMBEDDED_HEADROOM if isinstance(model, LlamaCppChatModel) else REMOTE_HEADROOM
    return ChatPolicy(
        system_prompt=settings.chat_system_prompt or DEFAULT_SYSTEM_PROMPT,
        rule=ContextRule(
            min_similarity=settings.chat_min_similarity,
            max_documents=settings.chat_max_documents,
            min_normalised=settings.chat_min_normalised,
            min_keep=settings.chat_min_keep,
        ),
        search_limit=settings.chat_search_limit,
        memories_per_document=settings.chat_memories_per_document,
        max_history=settings.chat_max_history,
        max_answer_tokens=settings.llm_max_tokens,
        token_headroom=headroom,
    )


def plugin_host(settings: Settings) -> PluginHost:
    from memoryd.plugins import builtin

    return PluginHost.load(builtins=builtin.modules(), disabled=settings.plugins_disabled)


# --- the container -------------------------------------------------------------------------------


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    plugins = providers.Singleton(plugin_host, settings)
    session = providers.Resource(http_session)
    tokens = providers.Resource(token_counter, settings)
    embedder = providers.Resource(embedder_resource, settings, session)
    storage = providers.Resource(storage_resource, settings, embedder)
    chat_model = providers.Resource(chat_model_resource, settings, session)

    policy = providers.Factory(
        MemoryPolicy,
        context_before=settings.provided.memory_context_before,
        context_after=settings.provided.memory_context_after,
        piece_words=settings.provided.memory_piece_words,
        max_chars=settings.provided.memory_max_chars,
    )
    fusion = providers.Factory(
        FusionSettings,
        method=settings.provided.search_fusion,
        candidates=settings.provided.search_candidates,
        rrf_k=settings.provided.search_rrf_k,
        dense_weight=settings.provided.search_dense_weight,
        keyword_weight=settings.provided.search_keyword_weight,
    )

    ingest = providers.Singleton(
        IngestService,
        store=storage.provided.conversations,
        index=storage.provided.index,
        embedder=embedder,
        tokens=tokens,
        clock=clock,
        policy=policy,
        part_handlers=plugins.provided.part_handlers.call(),
    )
    search = providers.Singleton(
        SearchService,
        index=storage.provided.index,
        embedder=embedder,
        fusion=fusion,
        rerankers=plugins.provided.rerankers.call(),
        cache=providers.Factory(SearchCache, capacity=settings.provided.search_cache_size),
    )
    conversations = providers.Singleton(
        ConversationService, store=storage.provided.conversations, index=storage.provided.index
    )
    auth = providers.Singleton(Authenticator, keys=storage.provided.keys)
    chat = providers.Singleton(
        ChatService,
        search=search,
        threads=storage.provided.threads,
        model=chat_model,
        tokens=tokens,
        clock=clock,
        part_handlers=plugins.provided.part_handlers.call(),
        policy=providers.Factory(chat_policy, settings, chat_model),
    )
    services = providers.Singleton(
        Services,
        auth=auth,
        ingest=ingest,
        search=search,
        conversations=conversations,
        store=storage.provided.conversations,
        chat=chat,
    )


async def _resolve(value: Any) -> Any:
    return await value if asyncio.isfuture(value) or asyncio.iscoroutine(value) else value


async def create_app(
    settings: Settings, *, overrides: Mapping[str, object] | None = None
) -> web.Application:
    """Open every resource, then build the aiohttp app; its cleanup closes them.

    ``overrides`` replaces named providers with ready objects (tests use it to
    wrap the real embedder with a counter).
    """
    container = Container(settings=settings)
    for name, value in (overrides or {}).items():
        getattr(container, name).override(providers.Object(value))
    try:
        await _resolve(container.init_resources())
        services = await _resolve(container.services())
    except BaseException:
        await _resolve(container.shutdown_resources())
        raise
    app = build_app(
        services,
        HttpConfig(
            development=settings.development,
            max_body_bytes=settings.max_body_bytes,
            version=__version__,
        ),
    )

    async def close(_: web.Application) -> None:
        await _resolve(container.shutdown_resources())

    app.on_cleanup.append(close)
    return app


@contextlib.asynccontextmanager
async def embedder(settings: Settings) -> AsyncIterator[Embedder]:
    """The configured embedder, outside an app (benchmarks, tests)."""
    async with contextlib.aclosing(embedder_resource(settings)) as resource:
        yield await anext(resource)


@contextlib.asynccontextmanager
async def key_store(settings: Settings) -> AsyncIterator[KeyStore]:
    """The key store of ``settings``' data dir, without loading models or the index.

    Safe while a server has the same file open.
    """
    from memoryd.adapters.storage.sqlite import open_sqlite

    backend = await open_sqlite(
        settings.database_path, model_name=None, dimension=None, load_index=False
    )
    try:
        yield backend.keys
    finally:
        await backend.close()


async def serve(settings: Settings) -> None:
    """Run the server until SIGINT/SIGTERM; print its URL (and a first key, on first start)."""
    first_key = await _first_key(settings)
    app = await create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        wildcard = host in {"0.0.0.0", "::"}  # noqa: S104 (reading the bound address, not binding)
        url = f"http://{'127.0.0.1' if wildcard else host}:{port}"
        print(f"data: {settings.database_path}", flush=True)
        if first_key:
            print("No API key existed, so one was created for tenant 'default':", flush=True)
            print(f"API key: {first_key}", flush=True)
        # Last, so that whoever waits for this line has read everything above it.
        print(f"memoryd {__version__} is listening on {url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


async def _first_key(settings: Settings) -> str | None:
    async with key_store(settings) as keys:
        if await keys.list_keys():
            return None
        plaintext = new_key()
        await keys.create_key(tenant="default", digest=digest(plaintext), label="first start")
        return plaintext
