"""The built-in ``llm-rerank`` reranker: relevance scores from an OpenAI-compatible chat model.

It sends the query and the best ``max_documents`` candidates, numbered, to
``{url}/chat/completions`` in one request, asks for one score from 0 to 10 a
passage as JSON (``{"scores": [7, 0, ...]}``), and orders those by score (ties
keep the fused order), the rest after them. A server that is down, slow or
answers something unreadable leaves the fused order (logged once).

**Opt-in, and weak with small models**: with the small chat models that ship on
PyPI its scores were no better than chance in a trial here; use a capable
model, or a real rerank model through ``http-rerank``.

Off until ``rerankers = ["llm-rerank"]`` and a search asks (``rerank: true``)::

    [plugins.llm-rerank]
    url = "http://127.0.0.1:11434/v1"
    model = "qwen2.5:7b-instruct"
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import aiohttp
import attrs
from attrs import field, frozen

from memoryd.core.memories import memory_text
from memoryd.core.ports import RerankCandidate, Reranker
from memoryd.plugins.builtin.http_rerank import (
    RerankAnswerError,
    apply_scores,
    post_json,
    require_url,
)
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl

PLUGIN_NAME = "llm-rerank"

PROMPT = (
    "Rate how relevant each numbered passage is to the query, from 0 (unrelated) to 10 "
    "(answers it). Reply with JSON only, one score per passage in order: "
    '{{"scores": [...]}}\n\nQuery: {query}\n\n{passages}'
)


@frozen
class LlmRerankSettings:
    """``[plugins.llm-rerank]``."""

    #: The server's OpenAI base URL, ending in /v1; required when used.
    url: str | None = None
    model: str = ""
    #: Sent as ``Authorization: Bearer ...``; a secret.
    api_key: str | None = field(default=None, repr=False)
    #: Seconds the request may take.
    timeout: float = field(default=20.0, validator=attrs.validators.gt(0))
    #: The most candidates scored (the best by fused score).
    max_documents: int = field(default=20, validator=attrs.validators.gt(0))
    #: Characters of each passage sent.
    passage_chars: int = field(default=500, validator=attrs.validators.gt(0))


def parse_scores(content: str, count: int) -> dict[int, float]:
    """``{index: score}`` from the model's reply: ``{"scores": [...]}``, or a bare list."""
    found = re.search(r"\[[^\[\]]*\]", content)
    if found is None:
        raise RerankAnswerError(f"the model's reply has no list of scores: {content[:200]!r}")
    try:
        values = json.loads(found.group(0))
    except ValueError as exc:
        raise RerankAnswerError(
            f"the model's scores are not JSON: {found.group(0)[:200]!r}"
        ) from exc
    scores = {
        i: float(v)
        for i, v in enumerate(values[:count])
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    if not scores:
        raise RerankAnswerError(f"the model gave no numeric score: {found.group(0)[:200]!r}")
    return scores


@frozen
class LlmReranker:
    session: aiohttp.ClientSession
    url: str
    model: str = ""
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 20.0
    max_documents: int = 20
    passage_chars: int = 500
    name: str = "llm-rerank"

    async def rerank(self, query: str, pool: Sequence[RerankCandidate]) -> list[RerankCandidate]:
        sent = list(pool[: self.max_documents])
        if not sent:
            return list(pool)
        passages = "\n".join(
            f"[{i}] {memory_text(c.memory)[: self.passage_chars]}" for i, c in enumerate(sent)
        )
        body: dict[str, Any] = {
            "messages": [
                {"role": "user", "content": PROMPT.format(query=query, passages=passages)}
            ],
            "temperature": 0,
            "stream": False,
        }
        if self.model:
            body["model"] = self.model
        answer = await post_json(
            self.session,
            f"{self.url.rstrip('/')}/chat/completions",
            body,
            api_key=self.api_key,
            seconds=self.timeout,
        )
        try:
            content = str(answer["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError) as exc:
            raise RerankAnswerError("the answer is not a chat completion") from exc
        scores = parse_scores(content, len(sent))
        return apply_scores(sent, scores) + list(pool[len(sent) :])


@hookimpl
def memoryd_plugin_settings() -> type[LlmRerankSettings]:
    return LlmRerankSettings


@hookimpl
def memoryd_register_rerankers(context: PluginContext[LlmRerankSettings]) -> Sequence[Reranker]:
    config = context.config
    require_url(context, PLUGIN_NAME, config.url, "http://HOST:PORT/v1")
    if context.session is None:
        return []
    return [
        LlmReranker(
            session=context.session,
            url=config.url or "",
            model=config.model,
            api_key=config.api_key,
            timeout=config.timeout,
            max_documents=config.max_documents,
            passage_chars=config.passage_chars,
        )
    ]
