"""A streaming client for any OpenAI-compatible ``/v1/chat/completions`` server.

OpenAI, Ollama, vLLM and llama.cpp's server all speak it. Errors never carry
the API key: every message is built from the URL (with any user info
removed), the status and a short, redacted excerpt of the answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import aiohttp
from attrs import Factory, define, field

from memoryd.adapters._outbound import SessionSlot, redact, without_user
from memoryd.adapters.llm._sse import DONE, SseDecoder
from memoryd.core.errors import ConfigurationError, ModelUnavailable
from memoryd.core.ports import ChatTurn, Completed, FinishReason, Usage

log = logging.getLogger(__name__)

_EXCERPT = 200
_MAX_BACKOFF = 2.0
_PATH = "/chat/completions"
#: OpenAI's finish reasons in the port's words (any other string is "other").
_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content-filter",
    "tool_calls": "tool-calls",
    "function_call": "tool-calls",
}


@define(kw_only=True)
class OpenAIChatModel:
    """The ``ChatModel`` port over ``POST {base_url}/chat/completions`` with ``stream: true``.

    ``base_url`` is the server's OpenAI base, ending in ``/v1`` (``llm_url``).
    ``session`` is the app's shared ``aiohttp.ClientSession``; without one the
    model opens its own and :meth:`aclose` closes it (a shared one stays open).

    Failures raise ``ModelUnavailable``. Only a connection that cannot be made
    at all (refused, or not made within ``connect_timeout``) is retried,
    ``connect_retries`` times with exponential backoff from
    ``retry_backoff`` seconds; once a request reached the server it is never
    sent twice. A stream that brings no event for ``read_timeout`` seconds
    (no bytes, or keep-alives only) counts as stalled. Stopping the iteration
    (``aclose()`` on the stream, or cancelling the task that reads it) closes
    the HTTP response, which tells the server to stop generating.
    """

    base_url: str = field(repr=lambda url: repr(without_user(url)))
    model: str
    api_key: str | None = field(default=None, repr=False)
    context_window: int = 8192
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    connect_retries: int = 2
    retry_backoff: float = 0.25
    #: Sampling temperature sent with each request (None: the server's default).
    temperature: float | None = 0.2
    session: aiohttp.ClientSession | None = field(default=None, repr=False)
    #: What error messages call the server ("the embedded llama.cpp server"); None: by its URL.
    label: str | None = None
    #: The setting that holds ``base_url``, named when the server cannot be reached.
    url_setting: str | None = "llm_url"
    _sessions: SessionSlot = field(
        default=Factory(lambda self: SessionSlot(self.session), takes_self=True),
        init=False,
        repr=False,
    )

    def __attrs_post_init__(self) -> None:
        checks = [
            ("llm_context_window", self.context_window, self.context_window >= 1),
            ("llm_connect_timeout", self.connect_timeout, self.connect_timeout > 0),
            ("llm_read_timeout", self.read_timeout, self.read_timeout > 0),
            ("llm_connect_retries", self.connect_retries, self.connect_retries >= 0),
        ]
        for setting, value, ok in checks:
            if not ok:
                raise ConfigurationError(f"{setting} is out of range: {value}")

    @property
    def name(self) -> str:
        """The model's name as the server knows it (``llm_model``)."""
        return self.model

    @property
    def endpoint(self) -> str:
        """Where completions are requested, without any user info (safe to show)."""
        return without_user(self._url)

    @property
    def _url(self) -> str:
        base = self.base_url.rstrip("/")
        return base if base.endswith(_PATH) else base + _PATH

    @property
    def _server(self) -> str:
        return self.label or f"the chat model server at {self.endpoint}"

    async def stream(
        self, turns: Sequence[ChatTurn], *, max_tokens: int
    ) -> AsyncGenerator[str | Completed, None]:
        """Yield the answer's text pieces as the server writes them, then ``Completed``.

        The finish reason is the server's (``length`` when ``max_tokens`` cut the
        answer); the usage is the server's own count, asked for with
        ``stream_options.include_usage`` (None if it sends none).
        """
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": t.role, "content": t.content} for t in turns],
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.temperature is not None:
            body["temperature"] = self.temperature
        response = await self._open(body)
        finished = False
        reason: FinishReason = "unknown"
        usage: Usage | None = None
        try:
            if response.content_type == "application/json":  # a server that ignored "stream"
                event = self._json(await self._next_data(response, None) or "")
                piece = _whole(event)
                reason, usage = _finish_reason(event) or reason, _usage(event)
                if piece:
                    yield piece
            else:
                decoder = SseDecoder()
                while (data := await self._next_data(response, decoder)) is not None:
                    if data.strip() == DONE:
                        break
                    event = self._json(data)
                    reason = _finish_reason(event) or reason
                    usage = _usage(event) or usage
                    piece = _piece(event)
                    if piece:
                        yield piece
            finished = True
        finally:
            # A finished answer gives its connection back; an abandoned one is cut,
            # so that the server sees the client go and stops generating.
            if finished:
                response.release()
            else:
                response.close()
        yield Completed(reason, usage)

    async def _open(self, body: dict[str, Any]) -> aiohttp.ClientResponse:
        attempts = self.connect_retries + 1
        timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=self.connect_timeout, sock_read=self.read_timeout
        )
        headers = {"Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        reason = ""
        for attempt in range(1, attempts + 1):
            try:
                response = await self._post(body, headers, limits=timeout)
            except aiohttp.ClientSSLError as exc:
                raise ModelUnavailable(
                    f"{_cap(self._server)} failed the TLS handshake ({self._reason(exc)})"
                    + self._url_hint()
                ) from exc
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                reason = self._reason(exc)
                if attempt < attempts:
                    delay = min(self.retry_backoff * 2 ** (attempt - 1), _MAX_BACKOFF)
                    log.warning(
                        "Cannot reach %s (attempt %d of %d: %s); retrying in %.2g s",
                        self._server,
                        attempt,
                        attempts,
                        reason,
                        delay,
                    )
                    await asyncio.sleep(delay)
                continue
            except TimeoutError as exc:
                raise self._stalled() from exc
            except aiohttp.ClientError as exc:
                raise self._broken(exc) from exc
            if not 200 <= response.status < 300:
                raise await self._refusal(response)
            return response
        raise ModelUnavailable(
            f"Cannot reach {self._server} after {attempts} attempt{'s' * (attempts > 1)} "
            f"({reason}); is the server running?" + self._url_hint(),
            details={"setting": self.url_setting} if self.url_setting else None,
        )

    async def _post(
        self, body: dict[str, Any], headers: dict[str, str], *, limits: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        """POST ``body``; once more on a new connection if a kept-alive one was closed.

        A server may close an idle kept-alive connection just as it is reused: the
        request then fails before any answer ("Server disconnected", "Can not write
        request body"). That is not an outage, and nothing was answered, so the
        request is sent again at once (aiohttp has dropped the closed connection).
        A connection that cannot be made is the caller's retry loop's business.
        """
        for again in (False, True):
            try:
                return await self._sessions.get().post(
                    self._url, json=body, headers=headers, timeout=limits
                )
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                if again or isinstance(exc, aiohttp.ClientConnectorError):
                    raise
                log.info("%s closed a kept-alive connection (%s); sending again", self._server, exc)
        raise AssertionError("unreachable")

    async def _next_data(
        self, response: aiohttp.ClientResponse, decoder: SseDecoder | None
    ) -> str | None:
        """The next event's data (without a decoder: the whole body); None at the end."""
        deadline = asyncio.get_running_loop().time() + self.read_timeout
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    if decoder is None:
                        return (await response.read()).decode("utf-8", errors="replace")
                    line = await response.content.readline()
            except TimeoutError as exc:
                raise self._stalled() from exc
            except (aiohttp.ClientError, ValueError) as exc:
                raise self._broken(exc) from exc
            if not line:
                return decoder.flush()
            data = decoder.feed(line.decode("utf-8", errors="replace"))
            if data is not None:
                return data

    def _json(self, data: str) -> dict[str, Any]:
        try:
            event = json.loads(data)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            raise ModelUnavailable(
                f"{_cap(self._server)} sent something that is not an OpenAI chat completion "
                f"({self._excerpt(data)!r})" + self._url_hint()
            )
        if "error" in event:
            error = event["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise ModelUnavailable(
                f"{_cap(self._server)} reported an error: {self._excerpt(str(message))}"
            )
        return event

    async def _refusal(self, response: aiohttp.ClientResponse) -> ModelUnavailable:
        status = response.status
        try:
            async with asyncio.timeout(min(self.read_timeout, 5.0)):
                text = (await response.content.read(4096)).decode("utf-8", errors="replace")
        except (TimeoutError, aiohttp.ClientError):
            text = ""
        finally:
            response.close()
        if status in (401, 403):
            unset = "" if self.api_key else " (none is set)"
            return ModelUnavailable(
                f"{_cap(self._server)} refused the API key (HTTP {status}); "
                f"check the llm_api_key setting{unset}",
                details={"status": status, "setting": "llm_api_key"},
            )
        hint = (
            "; check llm_url (it should end in /v1) and llm_model"
            if status == 404
            else "; check llm_url and llm_model"
        )
        return ModelUnavailable(
            f"{_cap(self._server)} answered HTTP {status}: {self._excerpt(text)!r}"
            + (hint if self.url_setting else ""),
            details={"status": status},
        )

    def _stalled(self) -> ModelUnavailable:
        return ModelUnavailable(
            f"{_cap(self._server)} sent nothing for {self.read_timeout:g} s, so the answer "
            "was stopped; raise llm_read_timeout if the model is that slow",
            details={"setting": "llm_read_timeout"},
        )

    def _broken(self, exc: BaseException) -> ModelUnavailable:
        return ModelUnavailable(
            f"The connection to {self._server} broke ({self._reason(exc)}); "
            "the server may have stopped or restarted"
        )

    def _url_hint(self) -> str:
        return f"; check the {self.url_setting} setting" if self.url_setting else ""

    def _reason(self, exc: BaseException) -> str:
        text = str(exc)
        return self._redact(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)

    def _excerpt(self, text: str) -> str:
        return self._redact(" ".join(text.split()))[:_EXCERPT]

    def _redact(self, text: str) -> str:
        return redact(text, api_key=self.api_key, base_url=self.base_url)

    async def aclose(self) -> None:
        """Close the session this model opened itself (a shared one is left open)."""
        await self._sessions.close()


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _first_choice(event: dict[str, Any]) -> dict[str, Any]:
    choices = event.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    return first if isinstance(first, dict) else {}


def _piece(event: dict[str, Any]) -> str:
    """A streamed event's text."""
    delta = _first_choice(event).get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""


def _whole(event: dict[str, Any]) -> str:
    """A whole (not streamed) completion's text."""
    message = _first_choice(event).get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def _finish_reason(event: dict[str, Any]) -> FinishReason | None:
    """The event's finish reason in the port's words; None if it gives none."""
    reason = _first_choice(event).get("finish_reason")
    if not isinstance(reason, str) or not reason:
        return None
    return _REASONS.get(reason, "other")


def _usage(event: dict[str, Any]) -> Usage | None:
    """The server's own token counts, if the event carries both (the last one does)."""
    usage = event.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    if prompt is None or completion is None:
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
