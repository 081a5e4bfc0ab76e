"""Use cases: read and forget a stored conversation."""

from __future__ import annotations

from attrs import define

from memoryd.core.errors import Forbidden, NotFound
from memoryd.core.model import Caller, Conversation
from memoryd.core.ports import ConversationStore, IndexChange, MemoryIndex


@define
class ConversationService:
    store: ConversationStore
    index: MemoryIndex

    async def get(self, caller: Caller, conversation_id: str) -> Conversation:
        """The conversation, if this key may see it; else ``NotFound`` (never a 403)."""
        found = await self.store.get_conversation(caller.tenant_id, conversation_id)
        if found is None or not caller.can_see(found.container_tags):
            raise NotFound("Conversation not found", details={"conversationId": conversation_id})
        return found

    async def forget(self, caller: Caller, conversation_id: str) -> int:
        """Delete the conversation, its messages, memories and vectors; return memories removed."""
        found = await self.get(caller, conversation_id)
        if not caller.may_use_tags(found.container_tags):
            raise Forbidden(
                f"This API key may not delete conversation {conversation_id!r}: it carries "
                "container tags outside the key's",
                details={"containerTags": sorted(set(found.container_tags) - set(caller.tags))},
            )
        removed = await self.store.delete_conversation(caller.tenant_id, conversation_id)
        if removed is None:
            raise NotFound("Conversation not found", details={"conversationId": conversation_id})
        await self.index.apply(
            IndexChange(
                tenant_id=caller.tenant_id,
                conversation_id=conversation_id,
                removed_memory_ids=removed,
            )
        )
        return len(removed)
