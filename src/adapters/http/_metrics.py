"""Prometheus metrics: ``GET /metrics``, memoryd's own series prefixed ``memoryd_``.

Each app has a registry of its own (two apps in one process never share or
clash). What is measured, and where:

- requests, by route (its pattern, never the raw path) and status, and their
  latency: the outermost middleware;
- embedding model calls (seconds, by kind) and the texts waiting for the model:
  the batching embedder's observer and its queue;
- memories in the index, by storage backend: read when scraped;
- the chat model's time to its first token and its tokens per second: the chat
  stream (``_streams.stream_reply``);
- quota refusals (402), and plugin failures by plugin: the failures that
  ``memoryd.core.contain`` logs, counted by a logging handler.

Who may read it is the ``metrics`` setting (docs/configuration.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

from aiohttp import web
from aiohttp.typedefs import Handler
from attrs import define, field
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

#: Who may read ``/metrics``: anyone, a caller with a key limited to no tags, or nobody.
MetricsAccess: TypeAlias = Literal["open", "key", "off"]

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_RATE_BUCKETS = (1, 5, 10, 20, 40, 80, 160, 320, 640)


@runtime_checkable
class ObservableEmbedder(Protocol):
    """An embedder that reports its model calls and how many texts wait for the model."""

    def add_observer(self, observer: Callable[[bool, int, float], None]) -> None:
        """Call ``observer(query, texts, seconds)`` after each model call."""
        ...

    @property
    def waiting(self) -> int: ...


@define
class Metrics:
    """The app's series, in a registry of its own."""

    storage: str = "unknown"
    registry: CollectorRegistry = field(factory=lambda: CollectorRegistry(auto_describe=True))
    requests: Counter = field(init=False)
    latency: Histogram = field(init=False)
    embed_seconds: Histogram = field(init=False)
    embed_waiting: Gauge = field(init=False)
    index_memories: Gauge = field(init=False)
    first_token: Histogram = field(init=False)
    token_rate: Histogram = field(init=False)
    quota_refusals: Counter = field(init=False)
    plugin_failures: Counter = field(init=False)
    #: Reads how many memories the index holds, if it can tell (set by the app).
    count_memories: Callable[[], int | None] = field(default=lambda: None)

    def __attrs_post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "memoryd_http_requests", "HTTP requests answered", ["route", "method", "status"],
            registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "memoryd_http_request_duration_seconds", "Time to answer (to the end of a stream)",
            ["route", "method"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.embed_seconds = Histogram(
            "memoryd_embedding_batch_duration_seconds", "Seconds of one embedding model call",
            ["kind"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.embed_waiting = Gauge(
            "memoryd_embedding_queue_texts", "Texts waiting for the embedding model", registry=r
        )
        self.index_memories = Gauge(
            "memoryd_index_memories", "Memories the search index holds", ["backend"], registry=r
        )
        self.first_token = Histogram(
            "memoryd_llm_time_to_first_token_seconds", "From the answer's start to its first text",
            ["model"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.token_rate = Histogram(
            "memoryd_llm_tokens_per_second", "Answer tokens per second after the first",
            ["model"], buckets=_RATE_BUCKETS, registry=r,
        )  # fmt: skip
        self.quota_refusals = Counter(
            "memoryd_quota_refusals", "Requests refused for a key's token quota (402)", registry=r
        )
        self.plugin_failures = Counter(
            "memoryd_plugin_failures", "Plugin calls that raised, hung or returned too much",
            ["plugin"], registry=r,
        )  # fmt: skip

    def watch_embedder(self, embedder: object) -> None:
        """Observe the embedder's model calls and queue, if it reports them."""
        if isinstance(embedder, ObservableEmbedder):
            embedder.add_observer(self._embedded)
            self.embed_waiting.set_function(lambda: embedder.waiting)

    def _embedded(self, query: bool, texts: int, seconds: float) -> None:
        self.embed_seconds.labels("query" if query else "documents").observe(seconds)

    def answered(self, model: str, started: float, first: float | None, tokens: int) -> None:
        """A chat answer ended: its first text came at ``first`` (None: it had none)."""
        if first is None:
            return
        self.first_token.labels(model).observe(first - started)
        spent = time.perf_counter() - first
        if tokens > 1 and spent > 0:
            self.token_rate.labels(model).observe((tokens - 1) / spent)

    def exposition(self) -> bytes:
        count = self.count_memories()
        if count is not None:
            self.index_memories.labels(self.storage).set(count)
        return generate_latest(self.registry)


METRICS = web.AppKey("memoryd.metrics", Metrics)
ACCESS = web.AppKey("memoryd.metrics_access", str)


def route_of(request: web.Request) -> str:
    """The route's pattern (``/v4/conversations/{id}``), never the raw path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[METRICS]
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        route = route_of(request)
        metrics.requests.labels(route, request.method, str(status)).inc()
        metrics.latency.labels(route, request.method).observe(time.perf_counter() - started)
        if status == 402:
            metrics.quota_refusals.inc()


class PluginFailures(logging.Filter):
    """Counts the plugin failures ``memoryd.core.contain`` logs (``record.plugin``).

    A filter on their logger (``memoryd.plugins``), which is opened to debug records (a kind's later
    failures are logged at debug) while it counts: it lets through only what
    the logger let through before, so the logs read as they did.
    """

    def __init__(self, metrics: Metrics, level: int) -> None:
        super().__init__()
        self.metrics = metrics
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        plugin = getattr(record, "plugin", None)
        if isinstance(plugin, str):
            self.metrics.plugin_failures.labels(plugin).inc()
        return record.levelno >= self.level


CONTAIN_LOGGER = "memoryd.plugins"


def install(app: web.Application, metrics: Metrics, access: MetricsAccess) -> None:
    """Serve ``/metrics`` from ``app`` and count its plugin failures while it runs."""
    app[METRICS] = metrics
    app[ACCESS] = access
    logger = logging.getLogger(CONTAIN_LOGGER)
    counting = PluginFailures(metrics, logger.getEffectiveLevel())
    level = logger.level
    logger.addFilter(counting)
    logger.setLevel(logging.DEBUG)

    async def remove(_: web.Application) -> None:
        logger.removeFilter(counting)
        if not any(isinstance(f, PluginFailures) for f in logger.filters):
            logger.setLevel(level)

    app.on_cleanup.append(remove)


async def metrics_view(request: web.Request) -> web.Response:
    """``GET /metrics``: the Prometheus text exposition."""
    access = request.app[ACCESS]
    if access == "off":
        raise web.HTTPNotFound()
    if access == "key":
        from memoryd.adapters.http._auth import bearer_token
        from memoryd.adapters.http._keys import SERVICES
        from memoryd.core.errors import Forbidden

        caller = await request.app[SERVICES].auth.authenticate(bearer_token(request))
        if caller.tag_limited:
            raise Forbidden("/metrics needs a key limited to no container tags")
    body: Any = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
