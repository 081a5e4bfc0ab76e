"""The composition root: the one module that wires the ports into the services.

``Container`` (dependency-injector) declares how each port is built from
``Settings``; resources that hold threads, files, models or connections are
``providers.Resource`` async generators, opened by ``create_app`` before the
app serves and closed on its cleanup. The storage backend, the embedder and
the chat model are the factories that plugins registered under the names the
settings give (``storage``, ``embedder``, ``llm``); the built-in ones, in
``memoryd.plugins.builtin``, hold the construction of the concrete adapters.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
from aiohttp import web
from dependency_injector import containers, providers

from memoryd import __version__
from memoryd.adapters._fetch_guard import fetcher
from memoryd.adapters.clock import SystemClock
from memoryd.adapters.http import (
    HttpConfig,
    ServerLimits,
    Services,
    build_app,
    make_runner,
    routes_documents,
)
from memoryd.core.auth import Authenticator, digest, new_key
from memoryd.core.chat import DEFAULT_SYSTEM_PROMPT, ChatPolicy, ChatService
from memoryd.core.conversations import ConversationService
from memoryd.core.errors import ConfigurationError
from memoryd.core.indexer import Indexer
from memoryd.core.ingest import IngestService
from memoryd.core.memories import MemoryPolicy
from memoryd.core.ports import (
    ChatModel,
    Embedder,
    IngestQueue,
    KeyStore,
    PartHandler,
    Reranker,
    StorageBackend,
    TokenCounter,
)
from memoryd.core.queue_signal import QueueSignal
from memoryd.core.queued import IngestWorker
from memoryd.core.reading import UrlFetcher
from memoryd.core.retrieval import (
    ContextRule,
    FusionSettings,
    SearchCache,
    SearchService,
    choose_rerankers,
)
from memoryd.plugins.builtin import llamacpp as llamacpp_plugin
from memoryd.plugins.host import PluginFilters, PluginHost
from memoryd.plugins.registry import ChatModelEntry
from memoryd.settings import Settings

if TYPE_CHECKING:
    from memoryd.adapters.storage.sqlite import ModelSwitch

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
    settings: Settings,
    plugins: PluginHost,
    session: aiohttp.ClientSession | None = None,
    tokens: TokenCounter | None = None,
) -> AsyncGenerator[Embedder, None]:
    """The embedder that ``embedder`` names, loaded (local) or probed (remote)."""
    async with plugins.open_embedder(
        settings.embedder, settings=settings, session=session, tokens=tokens
    ) as opened:
        yield opened


async def storage_resource(
    settings: Settings,
    plugins: PluginHost,
    embedder: Embedder,
    session: aiohttp.ClientSession | None = None,
) -> AsyncGenerator[StorageBackend, None]:
    """The storage backend that ``storage`` names: the stores and the index."""
    async with plugins.open_storage(
        settings.storage, settings=settings, session=session, embedder=embedder
    ) as backend:
        yield backend


async def choose_chat_model(
    settings: Settings, plugins: PluginHost
) -> AsyncGenerator[ChatModelEntry, None]:
    """The chat model that ``llm`` names (``auto``: the first one that can run)."""
    yield await plugins.choose_chat_model(settings.llm, settings=settings)


async def chat_model_resource(
    settings: Settings,
    plugins: PluginHost | None = None,
    *,
    choice: ChatModelEntry | None = None,
    session: aiohttp.ClientSession | None = None,
    tokens: TokenCounter | None = None,
    embedder: Embedder | None = None,
) -> AsyncGenerator[ChatModel, None]:
    """The chosen chat model, started (the embedded llama.cpp) and stopped with the app.

    Alone (``chat_model_resource(settings)``), it loads the plugins and chooses itself.
    """
    plugins = plugins or plugin_host(settings)
    choice = choice or await plugins.choose_chat_model(settings.llm, settings=settings)
    async with plugins.open_chat_model(
        choice, settings=settings, session=session, tokens=tokens, embedder=embedder
    ) as model:
        yield model


async def plugin_lifespans(
    settings: Settings,
    plugins: PluginHost,
    session: aiohttp.ClientSession,
    embedder: Embedder,
    tokens: TokenCounter,
) -> AsyncGenerator[None, None]:
    """The plugins' startup code, then (when the app closes) their shutdown code."""
    async with plugins.lifespan(
        settings=settings, session=session, embedder=embedder, tokens=tokens
    ):
        yield


def plugin_part_handlers(
    settings: Settings,
    plugins: PluginHost,
    session: aiohttp.ClientSession,
    embedder: Embedder,
    tokens: TokenCounter,
) -> list[PartHandler]:
    return plugins.part_handlers(
        settings=settings, session=session, embedder=embedder, tokens=tokens
    )


def part_fetcher(settings: Settings) -> UrlFetcher | None:
    """The fetch guard for the URLs of image and file parts, or None while fetch_urls is off."""
    if not settings.fetch_urls:
        return None
    from memoryd.adapters._fetch_guard import FetchGuard

    return FetchGuard.from_settings(settings)


def plugin_rerankers(
    settings: Settings,
    plugins: PluginHost,
    session: aiohttp.ClientSession,
    embedder: Embedder,
    tokens: TokenCounter,
) -> list[Reranker]:
    """The rerankers the ``rerankers`` setting names, in its order (contained)."""
    installed = plugins.rerankers(
        settings=settings, session=session, embedder=embedder, tokens=tokens
    )
    return choose_rerankers(installed, settings.rerankers)


def plugin_filters(
    settings: Settings,
    plugins: PluginHost,
    session: aiohttp.ClientSession,
    embedder: Embedder,
    tokens: TokenCounter,
) -> PluginFilters:
    """Every plugin's ingest and result filters (contained)."""
    return plugins.filters(settings=settings, session=session, embedder=embedder, tokens=tokens)


#: The embedded llama.cpp's headroom, which its plugin registers (re-exported for tests).
EMBEDDED_HEADROOM = llamacpp_plugin.EMBEDDED_HEADROOM


def chat_policy(settings: Settings, choice: ChatModelEntry) -> ChatPolicy:
    """The chat's rules; the prompt's headroom is the model's unless chat_token_headroom is set."""
    headroom = settings.chat_token_headroom
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
        token_headroom=choice.token_headroom if headroom is None else headroom,
        rerank=settings.chat_rerank,
    )


def plugin_host(settings: Settings, extra: Sequence[object] = ()) -> PluginHost:
    """The built-in plugins, the installed ones and ``extra``, checked against the settings."""
    from memoryd.plugins import builtin

    host = PluginHost.load(settings, builtins=builtin.modules(), plugins=extra)
    host.check_selection()
    return host


# --- the container -------------------------------------------------------------------------------


def queued_signal(settings: Settings, signal: QueueSignal) -> QueueSignal | None:
    """The ingest's queue signal: ``signal`` with ``queued_ingest`` on, else None."""
    return signal if settings.queued_ingest else None


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    #: Plugin objects given to ``create_app`` besides the built-in and installed ones.
    extra_plugins = providers.Object(())
    plugins = providers.Singleton(plugin_host, settings, extra_plugins)
    session = providers.Resource(http_session)
    tokens = providers.Resource(token_counter, settings)
    embedder = providers.Resource(embedder_resource, settings, plugins, session, tokens)
    storage = providers.Resource(storage_resource, settings, plugins, embedder, session)
    chat_choice = providers.Resource(choose_chat_model, settings, plugins)
    chat_model = providers.Resource(
        chat_model_resource,
        settings,
        plugins,
        choice=chat_choice,
        session=session,
        tokens=tokens,
        embedder=embedder,
    )
    lifespans = providers.Resource(plugin_lifespans, settings, plugins, session, embedder, tokens)
    part_handlers = providers.Singleton(
        plugin_part_handlers, settings, plugins, session, embedder, tokens
    )
    rerankers = providers.Singleton(plugin_rerankers, settings, plugins, session, embedder, tokens)
    #: Fetches image and file parts' URLs when ``fetch_urls`` is on (tests override it).
    fetcher = providers.Singleton(part_fetcher, settings)
    filters = providers.Singleton(plugin_filters, settings, plugins, session, embedder, tokens)

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

    #: One per app: the ingests and deletes take turns applying the store's outbox.
    indexer = providers.Singleton(
        Indexer, outbox=storage.provided.conversations, index=storage.provided.index
    )
    #: Wakes the queued-ingest worker; the ingest gets it only with ``queued_ingest`` on.
    queue_signal = providers.Singleton(QueueSignal)
    ingest = providers.Singleton(
        IngestService,
        store=storage.provided.conversations,
        index=storage.provided.index,
        embedder=embedder,
        tokens=tokens,
        clock=clock,
        policy=policy,
        part_handlers=part_handlers,
        fetcher=fetcher,
        filters=filters.provided.drafts,
        max_embed_tokens=settings.provided.max_embed_tokens,
        indexer=indexer,
        queue=providers.Callable(queued_signal, settings, queue_signal),
    )
    search = providers.Singleton(
        SearchService,
        index=storage.provided.index,
        embedder=embedder,
        fusion=fusion,
        rerankers=rerankers,
        filters=filters.provided.results,
        cache=providers.Factory(SearchCache, capacity=settings.provided.search_cache_size),
    )
    conversations = providers.Singleton(
        ConversationService,
        store=storage.provided.conversations,
        index=storage.provided.index,
        threads=storage.provided.threads,
        indexer=indexer,
    )
    auth = providers.Singleton(Authenticator, keys=storage.provided.keys)
    chat = providers.Singleton(
        ChatService,
        search=search,
        threads=storage.provided.threads,
        model=chat_model,
        tokens=tokens,
        clock=clock,
        part_handlers=part_handlers,
        fetcher=fetcher,
        policy=providers.Factory(chat_policy, settings, chat_choice),
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


def check_queued_ingest(settings: Settings, backend: StorageBackend) -> None:
    """Refuse ``queued_ingest`` on a storage backend whose store cannot queue."""
    if settings.queued_ingest and not isinstance(backend.conversations, IngestQueue):
        raise ConfigurationError(
            f"queued_ingest is on, but the storage backend {settings.storage!r} cannot queue "
            "ingest (its conversation store lacks the IngestQueue capability): set "
            'queued_ingest = false (MEMORYD_QUEUED_INGEST=0), or use storage = "sqlite"',
            details={"setting": "queued_ingest", "storage": settings.storage},
        )


def worker_context(container: Container, settings: Settings, backend: StorageBackend) -> Any:
    """The app's ``cleanup_ctx`` that runs the queued-ingest worker while the app serves.

    It runs on every store that can queue: with ``queued_ingest`` off it finishes
    what a run with it on left queued, then stops.
    """

    async def run(_: web.Application) -> AsyncIterator[None]:
        store = backend.conversations
        task: asyncio.Task[None] | None = None
        if isinstance(store, IngestQueue):
            worker = IngestWorker(
                ingest=await _resolve(container.ingest()),
                queue=store,
                signal=await _resolve(container.queue_signal()),
                indexer=await _resolve(container.indexer()),
                forever=settings.queued_ingest,
            )
            task = asyncio.create_task(worker.run(), name="memoryd-queued-ingest")
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return run


async def _resolve(value: Any) -> Any:
    return await value if asyncio.isfuture(value) or asyncio.iscoroutine(value) else value


async def create_app(
    settings: Settings,
    *,
    overrides: Mapping[str, object] | None = None,
    plugins: Sequence[object] = (),
) -> web.Application:
    """Open every resource, then build the aiohttp app; its cleanup closes them.

    ``overrides`` replaces named providers with ready objects (tests use it to
    wrap the real embedder with a counter). ``plugins`` are plugin objects
    (modules, instances) loaded after the built-in and installed ones, as if
    installed (an application embedding memoryd, tests).
    """
    config = HttpConfig(  # first: a wrong setting stops memoryd before anything opens
        development=settings.development,
        max_body_bytes=settings.max_body_bytes,
        body_timeout=settings.body_timeout,
        version=__version__,
        metrics=metrics_access(settings),
        storage=settings.storage,
        profile_llm=settings.profile_llm,
    )
    settings.check()  # settings built without load_settings are checked at start too
    container = Container(settings=settings, extra_plugins=tuple(plugins))
    for name, value in (overrides or {}).items():
        getattr(container, name).override(providers.Object(value))
    try:
        await _resolve(container.init_resources())
        services = await _resolve(container.services())
        backend = await _resolve(container.storage())
        check_queued_ingest(settings, backend)
        # What a crash (or a failing index) left pending reaches the index before serving.
        await (await _resolve(container.indexer())).replay()
    except BaseException:
        await _resolve(container.shutdown_resources())
        raise
    app = build_app(services, config)
    # Queued ingest: the memories of queued writes (and of what a crash left queued).
    app.cleanup_ctx.append(worker_context(container, settings, backend))
    # /v3/documents fetches a URL content only through the guard, when fetch_urls is on.
    app[routes_documents.FETCH] = fetcher(settings)

    async def close(_: web.Application) -> None:
        await _resolve(container.shutdown_resources())
        # Singletons hold the closed resources (models, stores): let them go with the app.
        container.reset_singletons()

    app.on_cleanup.append(close)
    return app


def metrics_access(settings: Settings) -> Literal["open", "key", "off"]:
    """The ``metrics`` setting with "auto" resolved: open on a loopback host, else "key"."""
    if settings.metrics != "auto":
        return settings.metrics
    try:
        loopback = ipaddress.ip_address(settings.host).is_loopback
    except ValueError:
        loopback = settings.host == "localhost"
    return "open" if loopback else "key"


@contextlib.asynccontextmanager
async def embedder(settings: Settings) -> AsyncIterator[Embedder]:
    """The configured embedder, outside an app (benchmarks, tests)."""
    async with plugin_host(settings).open_embedder(settings.embedder, settings=settings) as found:
        yield found


def memory_policy(settings: Settings) -> MemoryPolicy:
    """How messages become memories, from the ``memory_*`` settings (as the app builds it)."""
    return MemoryPolicy(
        context_before=settings.memory_context_before,
        context_after=settings.memory_context_after,
        piece_words=settings.memory_piece_words,
        max_chars=settings.memory_max_chars,
    )


@contextlib.asynccontextmanager
async def part_handlers(settings: Settings, embedder: Embedder) -> AsyncIterator[list[PartHandler]]:
    """The plugins' part handlers outside an app (``memoryd reindex --embedder``)."""
    async with _plugin_resources(settings) as (plugins, session, tokens):
        yield plugin_part_handlers(settings, plugins, session, embedder, tokens)


@contextlib.asynccontextmanager
async def filters(settings: Settings, embedder: Embedder) -> AsyncIterator[PluginFilters]:
    """The plugins' filters outside an app (``memoryd reindex --embedder``)."""
    async with _plugin_resources(settings) as (plugins, session, tokens):
        yield plugin_filters(settings, plugins, session, embedder, tokens)


@contextlib.asynccontextmanager
async def _plugin_resources(
    settings: Settings,
) -> AsyncIterator[tuple[PluginHost, aiohttp.ClientSession, TokenCounter]]:
    plugins = plugin_host(settings)
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(contextlib.asynccontextmanager(http_session)())
        tokens = await stack.enter_async_context(
            contextlib.asynccontextmanager(token_counter)(settings)
        )
        yield plugins, session, tokens


@contextlib.asynccontextmanager
async def model_switch(settings: Settings, embedder: Embedder) -> AsyncIterator[ModelSwitch]:
    """The storage opened alone and marked as switching to ``embedder``'s model.

    Only the SQLite backend can switch (``adapters/storage/sqlite/_switch.py``).
    """
    if settings.storage != "sqlite":
        raise ConfigurationError(
            f"memoryd reindex --embedder is not supported on {settings.storage} yet: only "
            'on storage = "sqlite". (Plain memoryd reindex, which keeps the embedder, is.)',
            details={"setting": "storage", "storage": settings.storage},
        )
    from memoryd.adapters.storage.sqlite import open_for_model_switch

    switch = await open_for_model_switch(
        settings.database_path,
        embedder=settings.embedder,
        model_name=embedder.model_name,
        dimension=embedder.dimension,
    )
    try:
        yield switch
    finally:
        await switch.backend.close()


@contextlib.asynccontextmanager
async def key_store(settings: Settings, plugins: Sequence[object] = ()) -> AsyncIterator[KeyStore]:
    """The key store of the configured storage, without loading models or the index.

    The storage factory gets no embedder, which tells it that only the key
    store is needed: for SQLite, safe while a server has the same file open.
    """
    host = plugin_host(settings, plugins)
    async with host.open_storage(settings.storage, settings=settings) as backend:
        yield backend.keys


def server_limits(settings: Settings) -> ServerLimits:
    """The connection limits ``serve`` holds its clients to."""
    return ServerLimits(
        header_timeout=settings.header_timeout,
        keepalive_timeout=settings.keepalive_timeout,
        max_connections=settings.max_connections,
    )


async def serve(settings: Settings) -> None:
    """Run the server until SIGINT/SIGTERM; print its URL (and a first key, on first start)."""
    from memoryd.adapters._malloc import limit_malloc_arenas

    limit_malloc_arenas()
    limits = server_limits(settings)
    first_key = await _first_key(settings)
    app = await create_app(settings)
    runner = make_runner(app, limits)
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
