"""Use case: a container tag's profile (``POST /v4/profile``), and the rule that makes it.

Without a model the profile is deterministic and explainable
(:func:`build_profile`):

- ``static``: the memories that later memories keep referring back to. A
  later memory *refers back* to an earlier one when they share at least
  :data:`SHARED_WORDS` content words (words of 4 or more letters, not in
  :data:`STOPWORDS`, case folded). A memory referred back to by at least
  :data:`MIN_REFERENCES` later ones is static; the most referred to come
  first, ties the older first.
- ``dynamic``: the newest memories that are not static, newest first.

Both hold distinct texts only (case and spacing ignored), at most
:data:`MAX_ITEMS` each, out of the newest :data:`POOL` memories that carry
the tag and pass the filters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from attrs import define, frozen

from memoryd.core.errors import Forbidden
from memoryd.core.filters import Clause, MemoryFilter
from memoryd.core.memory_edits import editable
from memoryd.core.model import Caller, Memory, ScoredMemory
from memoryd.core.ports import ConversationStore
from memoryd.core.retrieval import SearchRequest, SearchService, normalise_query

#: The newest memories of the tag the profile is made from.
POOL = 500
#: Entries in ``static`` and in ``dynamic``, each at most.
MAX_ITEMS = 10
#: Later memories that must refer back to a memory for it to be static.
MIN_REFERENCES = 2
#: Content words a later memory must share with an earlier one to refer back to it.
SHARED_WORDS = 2
#: Words that say nothing of what a memory is about.
_STOPWORDS = """
    about above after again also always because been before being below between both
    could does doing down during each even ever from further have having here into just
    like made make many more most much must never only other over really same says should
    since some such than that their them then there these they thing things think this
    those though through very want were what when where which while will with would your
    yours yeah okay sure thanks thank well going know
"""
STOPWORDS = frozenset(_STOPWORDS.split())

_WORD = re.compile(r"[^\W\d_]{4,}")


def content_words(text: str) -> frozenset[str]:
    """The words of ``text`` that say what it is about (see the module's rule)."""
    return frozenset(w for w in (m.casefold() for m in _WORD.findall(text)) if w not in STOPWORDS)


@frozen
class ProfileEntry:
    memory: Memory
    #: How many later memories refer back to it (see the module's rule).
    references: int


@frozen
class Profile:
    static: tuple[ProfileEntry, ...] = ()
    dynamic: tuple[ProfileEntry, ...] = ()


def build_profile(memories: Sequence[Memory], *, max_items: int = MAX_ITEMS) -> Profile:
    """The profile of ``memories`` (any order) by the module's rule."""
    # Oldest first; said at the same time: in the order of their messages.
    ordered = sorted(memories, key=lambda m: (m.said_at, m.positions, m.id))
    words = [content_words(m.text) for m in ordered]
    references = [0] * len(ordered)
    for i, earlier in enumerate(words):
        if not earlier:
            continue
        need = min(SHARED_WORDS, len(earlier))
        for later in words[i + 1 :]:
            if len(earlier & later) >= need:
                references[i] += 1
    entries = [ProfileEntry(m, r) for m, r in zip(ordered, references, strict=True)]
    seen: set[str] = set()

    def distinct(candidates: Sequence[ProfileEntry]) -> list[ProfileEntry]:
        kept: list[ProfileEntry] = []
        for entry in candidates:
            key = normalise_query(entry.memory.text)
            if not key or key in seen:
                continue
            seen.add(key)
            kept.append(entry)
            if len(kept) == max_items:
                break
        return kept

    # Most referred to first; ties: the older first (``ordered`` is oldest first, sort is stable).
    static = distinct(
        sorted(
            (e for e in entries if e.references >= MIN_REFERENCES),
            key=lambda e: -e.references,
        )
    )
    dynamic = distinct(entries[::-1])
    return Profile(static=tuple(static), dynamic=tuple(dynamic))


@frozen
class ProfileRequest:
    container_tag: str
    conditions: tuple[Clause, ...] = ()
    #: A search whose results come with the profile; None: none.
    q: str | None = None
    threshold: float = 0.0
    #: The sections to make (``static``, ``dynamic``).
    include: frozenset[str] = frozenset({"static", "dynamic"})


@frozen
class ProfileResult:
    profile: Profile
    #: The results of ``q`` (None: no ``q``).
    search_results: list[ScoredMemory] | None = None


@define
class ProfileService:
    store: ConversationStore
    search: SearchService

    async def profile(self, caller: Caller, request: ProfileRequest) -> ProfileResult:
        tag = request.container_tag
        if not caller.may_use_tags([tag]):
            raise Forbidden(
                "This API key may not use this container tag",
                details={"containerTag": tag, "allowed": list(caller.tags)},
            )
        profile = Profile()
        if request.include & {"static", "dynamic"}:
            memories = await editable(self.store).list_memories(
                caller.tenant_id, tags=(tag,), limit=POOL
            )
            passing = MemoryFilter(
                tenant_id=caller.tenant_id, container_tags=(tag,), conditions=request.conditions
            )
            made = build_profile([m for m in memories if passing.matches(m)])
            profile = Profile(
                static=made.static if "static" in request.include else (),
                dynamic=made.dynamic if "dynamic" in request.include else (),
            )
        results = None
        if request.q is not None:
            results = await self.search.search(
                caller,
                SearchRequest(
                    q=request.q,
                    container_tags=(tag,),
                    threshold=request.threshold,
                    conditions=request.conditions,
                ),
            )
        return ProfileResult(profile=profile, search_results=results)
