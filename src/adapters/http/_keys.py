"""Every piece of app and request state, under typed keys, in one module."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from attrs import Attribute, field, frozen

from memoryd.core.auth import Authenticator
from memoryd.core.chat import ChatService
from memoryd.core.conversations import ConversationService
from memoryd.core.errors import ConfigurationError
from memoryd.core.ingest import IngestService
from memoryd.core.model import Caller
from memoryd.core.ports import ConversationStore
from memoryd.core.retrieval import SearchService


def positive(_: Any, attribute: Attribute[Any], value: float) -> None:
    """An attrs validator: the setting of the field's name must be more than 0."""
    if not value > 0:
        raise ConfigurationError(
            f"{attribute.name} must be more than 0, not {value!r}",
            details={"setting": attribute.name},
        )


@frozen
class HttpConfig:
    #: Add error details to 500 answers.
    development: bool = False
    #: Larger request bodies get 413, also once decompressed.
    max_body_bytes: int = 10 * 1024 * 1024
    #: Seconds a request body may take to arrive; then 408.
    body_timeout: float = field(default=60.0, validator=positive)
    version: str = "0"
    #: Who may read GET /metrics (the ``metrics`` setting, "auto" resolved).
    metrics: Literal["open", "key", "off"] = "open"
    #: The storage backend's name (the metrics' ``backend`` label).
    storage: str = "sqlite"
    #: POST /v4/profile: the chat model condenses the sections (setting ``profile_llm``).
    profile_llm: bool = False


@frozen
class Services:
    """What the handlers use: core services over the configured adapters."""

    auth: Authenticator
    ingest: IngestService
    search: SearchService
    conversations: ConversationService
    store: ConversationStore
    #: Chat with memory and its threads (None: the chat routes answer 500, not configured).
    chat: ChatService | None = None


SERVICES = web.AppKey("memoryd.services", Services)
CONFIG = web.AppKey("memoryd.config", HttpConfig)
CALLER = web.RequestKey("memoryd.caller", Caller)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def caller(request: web.Request) -> Caller:
    return request[CALLER]
