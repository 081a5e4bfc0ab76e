"""The built-in ``http-rerank`` reranker: a client for the common ``/v1/rerank`` shape.

Text Embeddings Inference, Jina, Cohere and llama.cpp's server (``--reranking``)
answer ``POST {model, query, documents, top_n}`` with
``{"results": [{"index": i, "relevance_score": s}, ...]}``; TEI's own
``/rerank`` takes ``texts`` and answers a bare list of ``{"index", "score"}``,
which this client reads too. The pool is sent as the memories as search shows
them (``[8 May 2023] Caroline: ...``), at most ``max_documents`` of them (the
best by fused score); those scored come first, by their new score, the rest
after them in their order. It goes through the app's shared HTTP session,
within ``timeout`` seconds (and ``plugin_timeout``); a server that is down,
slow or answers nonsense leaves the fused order, and memoryd logs it once.

Off until ``rerankers = ["http-rerank"]`` and a search asks (``rerank: true``)::

    [plugins.http-rerank]
    url = "http://127.0.0.1:8080/v1/rerank"
    model = "BAAI/bge-reranker-base"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import aiohttp
import attrs
from attrs import field, frozen

from memoryd.core.errors import ConfigurationError
from memoryd.core.memories import memory_text
from memoryd.core.ports import RerankCandidate, Reranker
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl

PLUGIN_NAME = "http-rerank"


@frozen
class HttpRerankSettings:
    """``[plugins.http-rerank]``."""

    #: The rerank endpoint, in full (``http://127.0.0.1:8080/v1/rerank``); required when used.
    url: str | None = None
    #: The model the server should use ("" leaves it out, for servers of one model).
    model: str = ""
    #: Sent as ``Authorization: Bearer ...``; a secret.
    api_key: str | None = field(default=None, repr=False)
    #: The body's list of texts: ``documents`` (Cohere, Jina, llama.cpp) or ``texts`` (TEI).
    documents_field: Literal["documents", "texts"] = "documents"
    #: Seconds the whole request may take.
    timeout: float = field(default=5.0, validator=attrs.validators.gt(0))
    #: The most candidates sent (the best by fused score).
    max_documents: int = field(default=50, validator=attrs.validators.gt(0))


class RerankAnswerError(ValueError):
    """The server's answer is not the rerank shape."""


def parse_scores(answer: Any, count: int) -> dict[int, float]:
    """``{index: score}`` from ``{"results": [...]}`` or a bare list (TEI)."""
    items = answer.get("results") if isinstance(answer, Mapping) else answer
    if not isinstance(items, list):
        raise RerankAnswerError("the answer has no list of results")
    scores: dict[int, float] = {}
    for item in items:
        if not isinstance(item, Mapping):
            raise RerankAnswerError("a result is not an object")
        index = item.get("index")
        score = item.get("relevance_score", item.get("score"))
        if (
            not isinstance(index, int)
            or isinstance(index, bool)
            or not 0 <= index < count
            or not isinstance(score, int | float)
            or isinstance(score, bool)
        ):
            raise RerankAnswerError(f"a result has no valid index and score: {dict(item)!r}")
        scores[index] = float(score)
    return scores


def apply_scores(
    pool: Sequence[RerankCandidate], scores: Mapping[int, float]
) -> list[RerankCandidate]:
    """Scored candidates first (best first, with their new score), then the rest in order."""
    scored = sorted(scores, key=lambda i: (-scores[i], i))
    rest = [c for i, c in enumerate(pool) if i not in scores]
    return [attrs.evolve(pool[i], score=scores[i]) for i in scored] + rest


@frozen
class HttpReranker:
    """Reorders the pool by a remote rerank model's scores."""

    session: aiohttp.ClientSession
    url: str
    model: str = ""
    api_key: str | None = field(default=None, repr=False)
    documents_field: str = "documents"
    timeout: float = 5.0
    max_documents: int = 50
    name: str = "http-rerank"

    async def rerank(self, query: str, pool: Sequence[RerankCandidate]) -> list[RerankCandidate]:
        sent = list(pool[: self.max_documents])
        if not sent:
            return list(pool)
        body: dict[str, Any] = {
            "query": query,
            self.documents_field: [memory_text(c.memory) for c in sent],
            "top_n": len(sent),
        }
        if self.model:
            body["model"] = self.model
        answer = await post_json(
            self.session, self.url, body, api_key=self.api_key, seconds=self.timeout
        )
        scores = parse_scores(answer, len(sent))
        return apply_scores(sent, scores) + list(pool[len(sent) :])


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: Mapping[str, Any],
    *,
    api_key: str | None,
    seconds: float,
) -> Any:
    """POST ``body`` as JSON and return the JSON answer; ``RerankAnswerError`` if not a 200."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with session.post(
        url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=seconds)
    ) as response:
        if response.status != 200:
            raise RerankAnswerError(
                f"{url} answered HTTP {response.status}: {(await response.text())[:200]}"
            )
        return await response.json(content_type=None)


def require_url(context: PluginContext[Any], plugin: str, url: str | None, example: str) -> None:
    """Refuse to start when the ``rerankers`` setting names ``plugin`` but its url is unset."""
    if plugin in context.settings.rerankers and not url:
        variable = "MEMORYD_PLUGIN_" + plugin.upper().replace("-", "_") + "__URL"
        raise ConfigurationError(
            f'rerankers names "{plugin}", which needs its url: set [plugins.{plugin}] '
            f'url = "{example}" (or {variable})',
            details={"plugin": plugin, "setting": "url"},
        )


@hookimpl
def memoryd_plugin_settings() -> type[HttpRerankSettings]:
    return HttpRerankSettings


@hookimpl
def memoryd_register_rerankers(context: PluginContext[HttpRerankSettings]) -> Sequence[Reranker]:
    config = context.config
    require_url(context, PLUGIN_NAME, config.url, "http://HOST:PORT/v1/rerank")
    if context.session is None:  # outside an app: nothing to talk through
        return []
    return [
        HttpReranker(
            session=context.session,
            url=config.url or "",
            model=config.model,
            api_key=config.api_key,
            documents_field=config.documents_field,
            timeout=config.timeout,
            max_documents=config.max_documents,
        )
    ]
