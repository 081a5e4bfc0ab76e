"""An OpenAI-compatible ``/v1/embeddings`` client (aiohttp).

Errors never carry the API key: every message is built from the URL (with any
user info removed), the status and a short, redacted excerpt of the answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import aiohttp
import numpy as np
from attrs import Factory, define, field

from memoryd.adapters._outbound import SessionSlot, redact, without_user
from memoryd.adapters.embedding._vectors import (
    FloatMatrix,
    FloatVector,
    empty_matrix,
    l2_normalise,
)
from memoryd.core.errors import ConfigurationError, ModelUnavailable

_EXCERPT = 200


@define(kw_only=True)
class OpenAIEmbedder:
    """The ``Embedder`` port over an OpenAI-compatible server's ``POST {base_url}/embeddings``.

    ``base_url`` ends in ``/v1`` (``embedding_url``). ``dimension`` is checked
    against every answer; if None, the first answer sets it (call
    :meth:`probe` at startup to learn it early). ``session`` is the app's
    shared ``aiohttp.ClientSession``; without one the embedder opens its own
    and :meth:`aclose` closes it (a shared session is left open).
    """

    base_url: str = field(repr=lambda url: repr(without_user(url)))
    model: str
    api_key: str | None = field(default=None, repr=False)
    dimension_setting: int | None = field(default=None, alias="dimension")
    timeout: float = 30.0
    batch_size: int = 64
    session: aiohttp.ClientSession | None = field(default=None, repr=False)
    _sessions: SessionSlot = field(
        default=Factory(lambda self: SessionSlot(self.session), takes_self=True),
        init=False,
        repr=False,
    )
    _learned: int | None = field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigurationError(
                f"embedding_batch_size must be at least 1, not {self.batch_size}"
            )
        if self.dimension_setting is not None and self.dimension_setting < 1:
            raise ConfigurationError(
                f"embedding_dimension must be positive, not {self.dimension_setting}"
            )

    @property
    def model_name(self) -> str:
        """The remote model's name (``embedding_model``)."""
        return self.model

    @property
    def dimension(self) -> int:
        """The vectors' length: configured, or learned from the first answer."""
        known = self.dimension_setting or self._learned
        if known is None:
            raise ConfigurationError(
                "The embedding dimension is not known yet: set embedding_dimension "
                "or let the server answer once (OpenAIEmbedder.probe())"
            )
        return known

    @property
    def endpoint(self) -> str:
        """Where embeddings are requested, without any user info (safe to show)."""
        return without_user(self.base_url.rstrip("/") + "/embeddings")

    async def probe(self) -> int:
        """Embed one short text to check the server and learn the dimension; return it."""
        await self.embed_documents(["ping"])
        return self.dimension

    async def embed_query(self, text: str) -> FloatVector:
        """One unit vector (float32, shape (dimension,)), for searching."""
        rows = await self.embed_documents([text])
        vector: FloatVector = rows[0]
        return vector

    async def embed_documents(self, texts: Sequence[str]) -> FloatMatrix:
        """One unit vector per text, in order, requested ``batch_size`` texts at a time."""
        items = list(texts)
        if not items:
            return empty_matrix(self.dimension_setting or self._learned or 0)
        parts = [
            await self._request(items[i : i + self.batch_size])
            for i in range(0, len(items), self.batch_size)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    async def _request(self, batch: list[str]) -> FloatMatrix:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            async with self._sessions.get().post(
                self.base_url.rstrip("/") + "/embeddings",
                json={"model": self.model, "input": batch},
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                text = await response.text(errors="replace")
                status = response.status
        except TimeoutError as exc:
            raise ModelUnavailable(
                f"The embedding server at {self.endpoint} did not answer within "
                f"{self.timeout:g} s; check embedding_url or raise embedding_timeout"
            ) from exc
        except (aiohttp.ClientError, ValueError) as exc:  # ValueError: a malformed URL
            raise ModelUnavailable(
                f"Cannot reach the embedding server at {self.endpoint} "
                f"({self._redact(type(exc).__name__ + ': ' + str(exc))}); check embedding_url"
            ) from exc
        if not 200 <= status < 300:
            raise ModelUnavailable(self._status_message(status, text), details={"status": status})
        return self._parse(text, len(batch))

    def _status_message(self, status: int, text: str) -> str:
        excerpt = self._redact(" ".join(text.split())[:_EXCERPT])
        if status in (401, 403):
            hint = "check embedding_api_key" + ("" if self.api_key else " (none is set)")
        elif status == 404:
            hint = "check embedding_url (it should end in /v1) and embedding_model"
        else:
            hint = "check embedding_url and embedding_model"
        return f"The embedding server at {self.endpoint} answered {status}: {excerpt!r}; {hint}"

    def _parse(self, text: str, expected: int) -> FloatMatrix:
        bad = f"The embedding server at {self.endpoint} sent an unexpected answer"
        try:
            data: Any = json.loads(text)["data"]
            rows = sorted(data, key=lambda item: int(item["index"]))
            indexes = [int(item["index"]) for item in rows]
            matrix = np.asarray([item["embedding"] for item in rows], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelUnavailable(f"{bad} ({type(exc).__name__}); check embedding_url") from exc
        if indexes != list(range(expected)) or matrix.ndim != 2:
            raise ModelUnavailable(
                f"{bad}: {len(indexes)} embeddings for {expected} texts; check embedding_url"
            )
        self._check_dimension(int(matrix.shape[1]))
        return l2_normalise(matrix)

    def _check_dimension(self, got: int) -> None:
        expected = self.dimension_setting or self._learned
        if expected is None:
            self._learned = got
        elif got != expected:
            source = "embedding_dimension is" if self.dimension_setting else "it first sent"
            raise ConfigurationError(
                f"The embedding model {self.model!r} at {self.endpoint} returned vectors of "
                f"dimension {got}, but {source} {expected}; check embedding_model and "
                "embedding_dimension (changing the model needs a re-index)",
                details={"expected": expected, "got": got},
            )

    def _redact(self, text: str) -> str:
        return redact(text, api_key=self.api_key, base_url=self.base_url)

    async def aclose(self) -> None:
        """Close the session this embedder opened itself (a shared one is left open)."""
        await self._sessions.close()
