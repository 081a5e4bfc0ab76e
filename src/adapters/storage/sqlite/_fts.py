"""The keyword side: a safe FTS5 MATCH expression built from the query's words.

User text never reaches FTS5 as syntax. The query is cut into words (Unicode
letters and digits), stopwords are dropped (bm25 gives them almost no weight,
while matching them would make FTS5 score nearly every row), and each word is
quoted as an FTS5 string and ORed. FTS5 runs each string through the table's
tokenizer, so quoting changes nothing about stemming or case. The tenant
restriction is a column filter on the indexed ``tenant_id``, so rows of other
tenants are dropped before ranking.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence

from memoryd.core.words import COMMON_FROM, terms

__all__ = ["COMMON_FROM", "terms"]  # the word rule, from memoryd.core.words

#: Rows the words a query ranks may match together. bm25 scores every matched
#: row (~2 us each here): 4,000 keeps the keyword side near 5 ms at 100k
#: memories, where 10,000 cost 10-20 ms, and a small tenant (fewer rows
#: than this) always ranks every word.
KEYWORD_BUDGET = 4000


def quote(text: str) -> str:
    """An FTS5 string literal: double quotes doubled, NULs (which end it early) as spaces.

    A NUL would make FTS5 fail with "unterminated string"; as a space it only
    splits the phrase, and the caller checks the exact value on the hits.
    """
    return '"' + text.replace('"', '""').replace("\x00", " ") + '"'


def words_expression(words: Sequence[str]) -> str:
    """``{searched context} : ("w1" OR "w2")``: the words, in the memory or its neighbours."""
    return "{searched context} : (" + " OR ".join(quote(w) for w in words) + ")"


def scope_expression(tenant_id: str | None, tags: Sequence[str]) -> str:
    """The FTS5 restriction to a tenant and to any of some tags ("" for none).

    A tag is matched as a phrase of its tokens (``conv-26`` is ``conv 26``),
    which can also match a longer tag holding the same tokens: the caller
    checks the exact filter on the hits.
    """
    clauses = []
    if tenant_id is not None:
        clauses.append(f"tenant_id : {quote(tenant_id)}")
    if tags:
        clauses.append("tags : (" + " OR ".join(quote(t) for t in tags) + ")")
    return " AND ".join(clauses)


class TermPlanner:
    """Chooses the words of a query worth ranking, within the searched scope.

    Two kinds of words are left out:

    - words found in more than half of the scope's memories (a speaker's
      name in a conversation, "day" in a diary): FTS5's bm25 statistics are
      table-wide, so such a word can look rare while saying nothing about
      this scope. Scopes under ``COMMON_FROM`` memories keep every word.
    - the commonest words past ``budget`` matched rows: bm25 scores every row
      an OR query matches (~1-2 us each), so a query is capped in cost.

    A word's count is read with a capped scan (cheap: no scoring) and cached
    per scope until the scope's size moves by a quarter.
    """

    def __init__(self, budget: int = KEYWORD_BUDGET, cache_size: int = 50_000) -> None:
        self.budget = budget
        self.cache_size = cache_size
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}
        self._lock = threading.Lock()

    def choose(
        self, conn: sqlite3.Connection, words: Sequence[str], scope: str, size: int
    ) -> list[str]:
        """The words to rank, rarest first (none, if every word is too common)."""
        judge = size >= COMMON_FROM
        if not judge and size <= self.budget:
            return list(words)
        # A count reaching the cap is over the budget, or over half the scope.
        cap = (min(self.budget, size // 2) if judge else self.budget) + 1
        counted = sorted(
            ((self._count(conn, w, scope, size, cap), w) for w in words), key=lambda x: x[0]
        )
        chosen: list[str] = []
        spent = 0
        for count, word in counted:
            if count == 0 or (judge and count > size // 2):
                continue
            if spent + count > self.budget:
                break
            spent += count
            chosen.append(word)
        return chosen

    def _count(self, conn: sqlite3.Connection, word: str, scope: str, size: int, cap: int) -> int:
        key = (scope, word)
        with self._lock:
            cached = self._counts.get(key)
        if cached is not None and 0.8 * cached[1] <= size <= 1.25 * cached[1]:
            return cached[0]
        expression = (
            f"{scope} AND {words_expression([word])}" if scope else words_expression([word])
        )
        (count,) = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM index_fts WHERE index_fts MATCH ? LIMIT ?)",
            (expression, cap),
        ).fetchone()
        with self._lock:
            if len(self._counts) >= self.cache_size:
                self._counts.clear()
            self._counts[key] = (int(count), size)
        return int(count)


def keyword_hits(
    conn: sqlite3.Connection,
    text: str,
    *,
    tenant_id: str,
    tags: Sequence[str],
    limit: int,
    planner: TermPlanner,
    covered: int,
) -> list[tuple[int, float]]:
    """``(memory rowid, relevance)`` of the best keyword matches, best first.

    Relevance is bm25 with the sign turned (higher is better). ``tags``
    restrict the MATCH when given (a scope much smaller than the tenant),
    else the tenant does, unless it is ``""`` (a tenant holding most rows:
    restricting would walk its whole token list; the caller filters after).
    ``covered`` is how many memories the restriction covers.
    """
    words = terms(text)
    if not words or limit <= 0:
        return []
    scope = scope_expression(tenant_id or None, tags)
    try:
        chosen = planner.choose(conn, words, scope, covered)
        if not chosen:
            return []
        expression = (
            f"{scope} AND {words_expression(chosen)}" if scope else words_expression(chosen)
        )
        rows = conn.execute(_RANKED, (expression, limit)).fetchall()
    except sqlite3.OperationalError as e:
        # A tenant id or tag that tokenises to nothing makes its filter an empty
        # phrase: rank without the restriction (the caller filters after).
        if not scope or "fts5" not in str(e).lower():
            raise
        chosen = planner.choose(conn, words, "", covered)
        if not chosen:
            return []
        rows = conn.execute(_RANKED, (words_expression(chosen), limit)).fetchall()
    return [(int(rowid), -float(rank)) for rowid, rank in rows]


#: Rowids, not memory ids: the index maps them in memory (a join costs ~5 us a row).
_RANKED = "SELECT rowid, rank FROM index_fts WHERE index_fts MATCH ? ORDER BY rank LIMIT ?"
