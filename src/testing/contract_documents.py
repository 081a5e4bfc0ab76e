"""The storage contract's part for ``ConversationsById`` (``/v3/documents/{id}``).

A backend without the capability skips it (the documents use case scans
``conversations_of`` instead). :mod:`memoryd.testing.contract` re-exports the test.
"""

from __future__ import annotations

import pytest

from memoryd.core.ports import ConversationsById


async def test_contract_conversation_by_id(open_backend: object) -> None:
    from memoryd.testing import contract as c  # contract imports this module

    async with open_backend() as backend:  # type: ignore[operator]
        store = backend.conversations
        if not isinstance(store, ConversationsById):
            pytest.skip(f"{type(store).__name__} does not offer ConversationsById")
        plain = c._conversation("acme", "c1", c._stored(["one", "two"]), tags=("red",))
        scoped = c._conversation("acme", "c1", c._stored(["blue"]), scope=("blue",))
        other = c._conversation("globex", "c2", c._stored(["theirs"]))
        for conversation in (plain, scoped, other):
            await c._commit(backend, c._change("created", conversation, conversation.messages))

        found = await store.conversation_by_id("acme", plain.id)
        assert found is not None
        assert (found.conversation_id, found.scope, found.container_tags) == ("c1", (), ("red",))
        assert [m.message.text for m in found.messages] == ["one", "two"]
        in_scope = await store.conversation_by_id("acme", scoped.id)
        assert in_scope is not None
        assert (in_scope.scope, [m.message.text for m in in_scope.messages]) == (
            ("blue",),
            ["blue"],
        )
        # Another tenant's id is not found, nor one that does not exist, nor a forgotten one.
        assert await store.conversation_by_id("acme", other.id) is None
        assert await store.conversation_by_id("acme", "no-such-id") is None
        await backend.conversations.delete_conversation("acme", "c1", scope=("blue",))
        assert await store.conversation_by_id("acme", scoped.id) is None
        assert await store.conversation_by_id("acme", plain.id) is not None
