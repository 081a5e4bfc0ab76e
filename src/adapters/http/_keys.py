"""Every piece of app and request state, under typed keys, in one module."""

from __future__ import annotations

from aiohttp import web
from attrs import frozen

from memoryd.core.auth import Authenticator
from memoryd.core.chat import ChatService
from memoryd.core.conversations import ConversationService
from memoryd.core.ingest import IngestService
from memoryd.core.model import Caller
from memoryd.core.ports import ConversationStore
from memoryd.core.retrieval import SearchService


@frozen
class HttpConfig:
    #: Add error details to 500 answers.
    development: bool = False
    max_body_bytes: int = 10 * 1024 * 1024
    version: str = "0"


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
