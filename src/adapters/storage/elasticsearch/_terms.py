"""The words the keyword side ranks: the embedded store's rule, counted in the cluster.

The embedded store (``sqlite._fts``) searches a query's distinct words less
its stopwords (a longer list than Lucene's ``_english_``: "did", "when",
"her" are left out there) and, in a scope of ``COMMON_FROM`` memories or
more, less the words found in more than half of the scope's memories (a
speaker's name in a conversation, the month of its dates): bm25 statistics
are index-wide, so such a word can look rare while saying nothing about the
scope, and it lifts every hit of the scope alike, which flattens the
keyword scores that the weighted fusion normalises. The same words are
searched here, so that both backends rank by the same evidence.

The words' counts within the searched filter, and the filter's size, are one
``size: 0`` search (a ``filters`` aggregation, a bucket per word) sent in the
search's ``_msearch``; counts are kept
per (filter, word) until the filter's size moves by a quarter, as the
embedded store keeps them. (Its budget of matched rows, a cap on FTS5's
cost, has no counterpart here.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

from memoryd.core.words import COMMON_FROM, terms

Doc = dict[str, Any]

__all__ = ["COMMON_FROM", "KEYWORD_FIELD", "TermPlanner", "keyword_match", "terms"]


class TermPlanner:
    """Counts and caches how many memories of a filter hold each word; picks the words."""

    def __init__(self, cache_size: int = 50_000) -> None:
        self.cache_size = cache_size
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def scope_key(clauses: Sequence[Doc]) -> str:
        return json.dumps(list(clauses), sort_keys=True, separators=(",", ":"))

    def known(self, scope: str, words: Sequence[str]) -> tuple[int | None, list[str]]:
        """The scope's last known size, and the words whose count is not known at that size."""
        with self._lock:
            size = self._sizes.get(scope)
            if size is None:
                return None, list(words)
            missing = []
            for w in words:
                cached = self._counts.get((scope, w))
                if cached is None or not 0.8 * cached[1] <= size <= 1.25 * cached[1]:
                    missing.append(w)
            return size, missing

    def learn(self, scope: str, size: int, counts: dict[str, int]) -> None:
        with self._lock:
            if len(self._counts) + len(counts) >= self.cache_size:
                self._counts.clear()
                self._sizes.clear()
            self._sizes[scope] = size
            for w, n in counts.items():
                self._counts[(scope, w)] = (n, size)

    def choose(self, scope: str, words: Sequence[str], size: int) -> list[str]:
        """The words to rank: all below ``COMMON_FROM`` memories, else those in at most half."""
        if size < COMMON_FROM:
            return list(words)
        with self._lock:
            counts = {w: self._counts.get((scope, w), (0, size))[0] for w in words}
        return [w for w in words if 0 < counts[w] <= size // 2]


#: The field the keyword side matches: the text weighted against its context
#: (``_codec.keyword_values``).
KEYWORD_FIELD = "keywords"


def keyword_match(words: Sequence[str]) -> Doc:
    """The keyword side's query: BM25 of ``words`` (any of them) in ``KEYWORD_FIELD``."""
    return {"match": {KEYWORD_FIELD: {"query": " ".join(words)}}}


def count_body(clauses: Sequence[Doc], words: Sequence[str]) -> Doc:
    """One ``size: 0`` search: the filter's memories (the total), and those holding each
    of ``words`` (a ``filters`` aggregation, bucket ``wN`` for the Nth word)."""
    body: Doc = {"query": {"bool": {"filter": list(clauses)}}, "size": 0, "track_total_hits": True}
    if words:
        buckets = {f"w{i}": keyword_match([w]) for i, w in enumerate(words)}
        body["aggs"] = {"words": {"filters": {"filters": buckets}}}
    return body


def counts(response: Doc, words: Sequence[str]) -> tuple[int, dict[str, int]]:
    """The filter's size and each word's count, from :func:`count_body`'s response."""
    value = response["hits"]["total"]
    size = int(value["value"] if isinstance(value, dict) else value)
    if not words:
        return size, {}
    buckets = response["aggregations"]["words"]["buckets"]
    return size, {w: int(buckets[f"w{i}"]["doc_count"]) for i, w in enumerate(words)}
