"""A probe over every key-protected route: zero reads outside the caller's scope, no oracle.

Secrets carry unique marker words (in their text, conversation id and metadata)
under tenant A's tags t1 and t2, untagged, and under tenant B. Every key (A's
full key, keys limited to t1, t2 and both, B's full key, a revoked key, malformed
keys and none) goes over every route: ingest, read and delete by id, search by
containerTags and containerTag, chat in new and continued threads (the extractive
model quotes its memories, so a leak shows in the streamed text), the thread
routes, and the search cache (a narrower key repeating a broader key's query).
No response body, stream bytes included, may carry a marker outside the key's
scope, and for every route addressed by id "exists elsewhere" must answer
exactly what "does not exist" answers, once the echoed id is normalised.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from memoryd import bootstrap
from memoryd.adapters.http._keys import SERVICES
from memoryd.settings import Settings
from tests.helpers import MakeKey, auth

Client = TestClient[Any, Any]

#: The secret of each scope, as a word that appears nowhere else.
MARKERS = {
    "t1": "aardvarkquill",
    "t2": "buffalotrumpet",
    "untagged": "chinchillamoss",
    "B": "dingolantern",
}
QUESTION = "What is the secret password of the vault?"

#: Which markers each key may read.
VISIBLE: dict[str, set[str]] = {
    "A-full": {"t1", "t2", "untagged"},
    "A-t1": {"t1"},
    "A-t2": {"t2"},
    "A-t1+t2": {"t1", "t2"},
    "B-full": {"B"},
    "revoked": set(),
    "malformed": set(),
    "basic": set(),
    "missing": set(),
}
UNAUTHORIZED = ("revoked", "malformed", "basic", "missing")


def secret(scope: str) -> dict[str, Any]:
    """The conversation holding ``scope``'s marker (also in its id and metadata)."""
    word = MARKERS[scope]
    body: dict[str, Any] = {
        "conversationId": f"vault-{word}",
        "messages": [
            {"role": "user", "content": f"The secret password of the vault is {word}."},
            {"role": "assistant", "content": f"Noted: the vault password is {word}."},
        ],
        "metadata": {"title": f"vault {word}", "description": f"about {word}"},
    }
    if scope in ("t1", "t2"):
        body["containerTags"] = [scope]
    return body


class Probe:
    """The keys, and the check every response goes through."""

    def __init__(self, client: Client, keys: dict[str, dict[str, str]]) -> None:
        self.client = client
        self.keys = keys
        self.checked = 0
        #: The conversation ids each key wrote itself (its own, whatever words they hold).
        self.own_ids: dict[str, set[str]] = {who: set() for who in keys}

    def markers(self, who: str, body: bytes, *, echoed: str = "") -> set[str]:
        """The scopes whose markers are in ``body``, leaving out what ``who`` sent itself.

        ``echoed`` (the id it asked for) and the ids of its own conversations are its
        own words, whatever they hold.
        """
        text = body.decode("utf-8", "replace").lower()
        for sent in sorted({echoed, *self.own_ids.get(who, ())} - {""}, key=len, reverse=True):
            text = text.replace(sent.lower(), "<its own>")
        return {s for s, word in MARKERS.items() if word in text}

    def leaks(self, who: str, body: bytes, *, echoed: str = "") -> set[str]:
        """The markers in ``body`` that ``who`` may not read."""
        return self.markers(who, body, echoed=echoed) - VISIBLE[who]

    async def call(
        self,
        who: str,
        method: str,
        path: str,
        *,
        body: Any = None,
        echoed: str = "",
        sse: bool = False,
    ) -> tuple[int, bytes, Any]:
        """Send the request as ``who``; fail on any marker outside its scope."""
        headers = dict(self.keys[who])
        if method == "POST" and path == "/v4/conversations" and isinstance(body, dict):
            self.own_ids[who].add(str(body.get("conversationId", "")))
        if sse:
            headers["Accept"] = "text/event-stream"
        response = await self.client.request(method, path, json=body, headers=headers)
        raw = await response.read()
        # Headers too (the thread id header, error details): nothing outside the scope.
        head = json.dumps(dict(response.headers)).encode()
        leaked = self.leaks(who, raw + head, echoed=echoed)
        assert not leaked, (who, method, path, body, leaked, raw[:500])
        if who in UNAUTHORIZED:
            assert response.status == 401, (who, method, path, response.status)
            assert json.loads(raw) == {"error": "Unauthorized"}
        self.checked += 1
        return response.status, raw, response.headers

    async def same_answer(
        self, who: str, method: str, elsewhere: str, nowhere: str, **kw: Any
    ) -> None:
        """``elsewhere`` (exists for someone else) answers exactly as ``nowhere`` does."""
        answers = []
        for ident in (elsewhere, nowhere):
            path_body = kw["make"](ident)
            status, raw, headers = await self.call(
                who, method, path_body[0], body=path_body[1], echoed=ident
            )
            answers.append((status, normalise(raw, ident), headers.get("Content-Type")))
        assert answers[0] == answers[1], (who, method, elsewhere, answers)


def normalise(raw: bytes, ident: str) -> Any:
    """A JSON body with the echoed id (and a freshly made conversation's own id) replaced."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw.replace(ident.encode(), b"<id>")

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            out = {k: walk(x) for k, x in v.items()}
            if "status" in out and "id" in out:  # an ingest response: "id" is new each time
                out["id"] = "<new>"
            return out
        if isinstance(v, list):
            return [walk(x) for x in v]
        return "<id>" if v == ident else v

    return walk(value)


async def make_keys(make_key: MakeKey, settings: Settings) -> dict[str, dict[str, str]]:
    plain = {
        "A-full": await make_key("tenant-a"),
        "A-t1": await make_key("tenant-a", tags=("t1",)),
        "A-t2": await make_key("tenant-a", tags=("t2",)),
        "A-t1+t2": await make_key("tenant-a", tags=("t2", "t1")),
        "B-full": await make_key("tenant-b"),
    }
    revoked = await make_key("tenant-a")
    async with bootstrap.key_store(settings) as store:
        found = await store.list_keys()
        assert await store.revoke_key(found[-1].id)
    keys = {who: auth(key) for who, key in plain.items()}
    keys["revoked"] = auth(revoked)
    keys["malformed"] = auth("md_" + "x" * 43)
    keys["basic"] = {"Authorization": "Basic " + plain["A-full"]}
    keys["missing"] = {}
    return keys


async def seed(probe: Probe) -> None:
    for scope in ("t1", "t2", "untagged"):
        status, _, _ = await probe.call("A-full", "POST", "/v4/conversations", body=secret(scope))
        assert status == 200
    status, _, _ = await probe.call("B-full", "POST", "/v4/conversations", body=secret("B"))
    assert status == 200
    # A conversation a limited key wrote itself, in its own scope.
    own = {"conversationId": "own-t1-notes", "messages": [{"role": "user", "content": "my notes"}]}
    assert (await probe.call("A-t1", "POST", "/v4/conversations", body=own))[0] == 200


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": QUESTION}], **extra}


async def start_thread(probe: Probe, who: str, **extra: Any) -> str:
    status, _, headers = await probe.call(who, "POST", "/api/chat", body=chat_body(**extra))
    assert status == 200
    return str(headers["Supermemory-Thread-Uuid"])


EVERYONE = list(VISIBLE)
AUTHORIZED = [w for w in EVERYONE if w not in UNAUTHORIZED]
#: The keys in the order they search and chat: the broadest first, so that the
#: narrower ones repeat queries the cache already holds.
BROAD_FIRST = ["A-full", "A-t1+t2", "A-t1", "A-t2", "B-full", *UNAUTHORIZED]
IDS = {s: str(secret(s)["conversationId"]) for s in MARKERS}


def by_id(path: str) -> Any:
    return lambda ident: (f"{path}/{ident}", None)


def never() -> str:
    return f"never-{uuid.uuid4().hex}"


async def searches_find_exactly_what_each_key_may_read(probe: Probe) -> None:
    for who in AUTHORIZED:
        _, raw, _ = await probe.call(who, "POST", "/v4/search", body={"q": QUESTION, "limit": 20})
        assert probe.markers(who, raw) == VISIBLE[who], who


async def probe_search(probe: Probe, app: web.Application) -> None:
    for who in BROAD_FIRST:
        for extra in (
            {},
            {"containerTags": ["t1"]},
            {"containerTags": ["t2"]},
            {"containerTags": ["t1", "t2"]},
            {"containerTags": ["nobody"]},
            {"containerTag": "t1"},
            {"containerTag": "t2"},
        ):
            body = {"q": QUESTION, "limit": 20, **extra}
            status, _, _ = await probe.call(who, "POST", "/v4/search", body=body)
            assert status in (200, 400, 401, 403), (who, extra, status)
    cache = app[SERVICES].search.cache
    misses = cache.misses
    # Positive controls (the probe is not vacuous), served from the cache: each key
    # repeats the query it made after the broader keys made it, and gets its own.
    await searches_find_exactly_what_each_key_may_read(probe)
    assert cache.misses == misses


async def probe_reads_by_id(probe: Probe) -> None:
    for who in EVERYONE:
        for scope, ident in IDS.items():
            status, _, _ = await probe.call(who, "GET", f"/v4/conversations/{ident}", echoed=ident)
            if who == ("B-full" if scope == "B" else "A-full"):  # the writer
                assert status == 200
            elif who not in UNAUTHORIZED:
                # A key limited to tags addresses only its own scope; B is another tenant.
                await probe.same_answer(who, "GET", ident, never(), make=by_id("/v4/conversations"))
    assert (await probe.call("A-t1", "GET", "/v4/conversations/own-t1-notes"))[0] == 200
    for who in ("A-t2", "A-t1+t2"):  # sharing a tag is not sharing a scope
        await probe.same_answer(
            who, "GET", "own-t1-notes", never(), make=by_id("/v4/conversations")
        )


async def probe_new_chats(probe: Probe) -> None:
    tags: list[dict[str, Any]] = [
        {},
        {"containerTags": ["t1"]},
        {"containerTags": ["t2"]},
        {"containerTag": "t1"},
    ]
    for who in BROAD_FIRST:
        for extra in tags:
            for sse in (False, True):
                await probe.call(who, "POST", "/api/chat", body=chat_body(**extra), sse=sse)


async def probe_a_shared_thread(probe: Probe) -> str:
    """A thread the t1 key starts and others continue keeps the t1 scope."""
    thread = await start_thread(probe, "A-t1")
    # The full key and the key of both tags continue it: they search only within t1.
    for who in ("A-full", "A-t1+t2"):
        status, raw, _ = await probe.call(who, "POST", "/api/chat", body=chat_body(threadId=thread))
        assert status == 200
        assert probe.markers(who, raw) == {"t1"}, (who, raw)
    # Tags outside the thread's are refused, naming the field; nothing is saved.
    status, raw, _ = await probe.call(
        "A-full", "POST", "/api/chat", body=chat_body(threadId=thread, containerTags=["t2"])
    )
    assert status == 400
    assert json.loads(raw)["details"][0]["path"] == "containerTags"
    # The t1 key reads back a history with nothing outside t1 (the probe checks), and
    # the history is part of its next prompt.
    status, raw, _ = await probe.call("A-t1", "GET", f"/api/chat/{thread}")
    assert status == 200
    assert len(json.loads(raw)["messages"]) == 6
    assert probe.markers("A-t1", raw) == {"t1"}
    assert (await probe.call("A-t1", "POST", "/api/chat", body=chat_body(threadId=thread)))[
        0
    ] == 200
    return thread


async def probe_thread_routes(probe: Probe, t1_thread: str) -> list[str]:
    whole = await start_thread(probe, "A-full")
    scoped_by_admin = await start_thread(probe, "A-full", containerTags=["t1"])
    t2_thread = await start_thread(probe, "A-t2")
    b_thread = await start_thread(probe, "B-full")
    # A thread whose title (its first message) carries the t2 secret.
    mention = {"messages": [{"role": "user", "content": f"remember {MARKERS['t2']}"}]}
    assert (await probe.call("A-t2", "POST", "/api/chat", body=mention))[0] == 200
    usable = {
        "A-full": {t1_thread, whole, scoped_by_admin, t2_thread},
        "A-t1": {t1_thread, scoped_by_admin},
        "A-t2": {t2_thread},
        "A-t1+t2": {t1_thread, scoped_by_admin, t2_thread},
        "B-full": {b_thread},
    }
    threads = {t1_thread, whole, scoped_by_admin, t2_thread, b_thread}
    for who in EVERYONE:
        _, raw, _ = await probe.call(who, "GET", "/api/threads?limit=100")
        if who in UNAUTHORIZED:
            for method, path, body in (
                ("GET", f"/api/chat/{whole}", None),
                ("DELETE", f"/api/chat/{whole}", None),
                ("POST", "/api/chat", chat_body(threadId=whole)),
            ):
                await probe.call(who, method, path, body=body)
            continue
        assert {t["id"] for t in json.loads(raw)["threads"]} & threads == usable[who], who
        for thread in sorted(threads - usable[who]):
            await probe_a_thread_it_may_not_use(probe, who, thread)
        for thread in usable[who]:
            assert (await probe.call(who, "GET", f"/api/chat/{thread}"))[0] == 200
    return [t1_thread, scoped_by_admin]


async def probe_a_thread_it_may_not_use(probe: Probe, who: str, thread: str) -> None:
    nowhere = uuid.uuid4().hex
    await probe.same_answer(who, "GET", thread, nowhere, make=by_id("/api/chat"))
    await probe.same_answer(
        who, "POST", thread, nowhere, make=lambda i: ("/api/chat", chat_body(threadId=i))
    )
    await probe.same_answer(who, "DELETE", thread, nowhere, make=by_id("/api/chat"))


async def probe_writes_by_id(probe: Probe) -> None:
    note = {"messages": [{"role": "user", "content": "a probe's own note"}]}
    for who in ["A-t1", "A-t2", "A-t1+t2", "B-full", *UNAUTHORIZED]:
        for ident in (IDS["untagged"], IDS["t1"] if who == "A-t2" else IDS["t2"]):
            if who in UNAUTHORIZED:
                body = {"conversationId": ident, **note}
                await probe.call(who, "POST", "/v4/conversations", body=body)
                continue
            await probe.same_answer(
                who,
                "POST",
                ident,
                f"fresh-{uuid.uuid4().hex}",
                make=lambda i: ("/v4/conversations", {"conversationId": i, **note}),
            )
    # Each key made its own conversation; nothing of the other scope's is in it...
    for who in ("A-t1", "A-t2", "A-t1+t2", "B-full"):
        path = f"/v4/conversations/{IDS['untagged']}"
        status, raw, _ = await probe.call(who, "GET", path)
        assert status == 200
        assert [m["content"] for m in json.loads(raw)["messages"]] == ["a probe's own note"]
    # ...and the admin's conversations, and their memories' tags, are as they were.
    for scope in ("t1", "t2", "untagged"):
        _, raw, _ = await probe.call("A-full", "GET", f"/v4/conversations/{IDS[scope]}")
        assert probe.markers("A-full", raw) == {scope}
        assert json.loads(raw)["containerTags"] == secret(scope).get("containerTags", [])
    await searches_find_exactly_what_each_key_may_read(probe)


async def probe_deletes_by_id(probe: Probe, citing: list[str]) -> None:
    for who in ["A-t1", "A-t2", "A-t1+t2", "B-full", *UNAUTHORIZED]:
        for scope in ("t1", "t2", "B"):
            ident = IDS[scope]
            if who in UNAUTHORIZED:
                await probe.call(who, "DELETE", f"/v4/conversations/{ident}", echoed=ident)
            elif ident not in probe.own_ids[who]:  # another's: as if it did not exist
                await probe.same_answer(
                    who, "DELETE", ident, never(), make=by_id("/v4/conversations")
                )
    await probe.same_answer("A-full", "DELETE", IDS["B"], never(), make=by_id("/v4/conversations"))
    await searches_find_exactly_what_each_key_may_read(probe)  # nothing was deleted
    # The admin forgets the t1 secret: every thread that cited it forgets the text.
    assert (await probe.call("A-full", "DELETE", f"/v4/conversations/{IDS['t1']}"))[0] == 200
    for thread in citing:
        _, raw, _ = await probe.call("A-t1", "GET", f"/api/chat/{thread}")
        cited = [a for m in json.loads(raw)["messages"] for a in m["annotations"]]
        assert any(a.get("forgotten") for a in cited)
        # The answers the model wrote may still quote it; the citations do not.
        assert MARKERS["t1"] not in json.dumps(cited), cited


async def test_no_key_reads_outside_its_scope_and_no_route_is_an_oracle(
    app: web.Application, client: Client, make_key: MakeKey, settings: Settings
) -> None:
    probe = Probe(client, await make_keys(make_key, settings))
    await seed(probe)
    await probe_search(probe, app)
    await probe_reads_by_id(probe)
    await probe_new_chats(probe)
    t1_thread = await probe_a_shared_thread(probe)
    citing = await probe_thread_routes(probe, t1_thread)
    await probe_writes_by_id(probe)
    await probe_deletes_by_id(probe, citing)
    assert probe.checked > 400
