"""Use cases: read and forget a stored conversation.

Conversation ids are namespaced by the key's scope, as they are by tenant: a
key limited to tags addresses by id only the conversations of its own scope
(``Caller.scope``), so a conversation of another scope and one that does not
exist take the same path and give the same 404. A key limited to no tags (the
tenant's admin) reads and deletes across scopes.
"""

from __future__ import annotations

from attrs import Factory, define, field

from memoryd.core.errors import NotFound
from memoryd.core.indexer import Indexer
from memoryd.core.model import Caller, Conversation, Scope
from memoryd.core.ports import ConversationStore, MemoryIndex, ThreadStore


def addressable(caller: Caller) -> Scope | None:
    """The scope a key reads and deletes by id in; None: every scope (a full key)."""
    return caller.scope if caller.tag_limited else None


@define
class ConversationService:
    store: ConversationStore
    index: MemoryIndex
    threads: ThreadStore
    #: Applies the delete (the store's outbox entry) to ``index``; share one per app.
    indexer: Indexer = field(
        default=Factory(lambda self: Indexer(self.store, self.index), takes_self=True)
    )

    async def get(self, caller: Caller, conversation_id: str) -> Conversation:
        """The conversation of that id this key may address; else ``NotFound`` (never a 403).

        A key limited to tags gets the one of its own scope. A full key gets the
        empty scope's, else the most recently updated one of that id.
        """
        found = await self.store.get_conversation(
            caller.tenant_id, conversation_id, scope=addressable(caller)
        )
        if found is None:
            raise NotFound("Conversation not found", details={"conversationId": conversation_id})
        return found

    async def forget(self, caller: Caller, conversation_id: str) -> int:
        """Delete the conversation and every copy of its text; return memories removed.

        Removes its messages, its memories (text, vectors, keyword rows), and the
        text that chat threads quote of it in their annotations (kept as forgotten
        citations). A key limited to tags deletes the conversation of its own
        scope; a full key deletes the conversations of that id in every scope.
        """
        removed = await self.store.delete_conversation(
            caller.tenant_id, conversation_id, scope=addressable(caller)
        )
        # The delete recorded its index change (an outbox entry): apply it before answering.
        # The change bumps the tenant's generation: cached searches miss from now on. A
        # retry of a delete whose index update failed finds no conversation: it finishes
        # that update, then answers 404.
        await self.indexer.drain(caller.tenant_id, conversation_id)
        if removed is None:
            raise NotFound("Conversation not found", details={"conversationId": conversation_id})
        await self.threads.forget_citations(caller.tenant_id, removed)
        return len(removed)
