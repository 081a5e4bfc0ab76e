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

import re
import sqlite3
import threading
from collections.abc import Sequence

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

#: Rows the words a query ranks may match together. bm25 scores every matched
#: row (~2 us each here): 4,000 keeps the keyword side near 5 ms at 100k
#: memories, where 10,000 cost 10-20 ms, and a small tenant (fewer rows
#: than this) always ranks every word.
KEYWORD_BUDGET = 4000

#: At most this many distinct words of a query are searched.
MAX_TERMS = 32

_STOPWORD_TEXT = """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your
    yours yourself yourselves s t d ll m re ve don didn doesn isn wasn weren won
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def terms(text: str) -> list[str]:
    """The distinct searchable words of ``text``, in order."""
    words = [w.casefold() for w in _WORD.findall(text)]
    kept = [w for w in dict.fromkeys(words) if w not in STOPWORDS]
    return kept[:MAX_TERMS]


def quote(text: str) -> str:
    """An FTS5 string literal: double quotes doubled."""
    return '"' + text.replace('"', '""') + '"'


def words_expression(words: Sequence[str]) -> str:
    """``text : ("w1" OR "w2")``: the words, searched in the text column only."""
    return "text : (" + " OR ".join(quote(w) for w in words) + ")"


class TermPlanner:
    """Chooses which words of a query the keyword side may afford to rank.

    bm25 scores every row an OR query matches, so a word found in a large
    share of the rows (a speaker's name, a year) costs milliseconds per ten
    thousand rows while adding almost nothing to the ranking (its IDF is near
    zero). Words are taken rarest first while the rows they match add up to
    at most ``budget``; a word's count is read with a capped scan (cheap: no
    scoring) and cached until the number of memories moves by a quarter.
    """

    def __init__(self, budget: int = KEYWORD_BUDGET, cache_size: int = 50_000) -> None:
        self.budget = budget
        self.cache_size = cache_size
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def choose(self, conn: sqlite3.Connection, words: Sequence[str], total: int) -> list[str]:
        """The affordable words, rarest first."""
        if total <= self.budget:
            return list(words)
        counted = sorted(((self._count(conn, w, total), w) for w in words), key=lambda x: x[0])
        chosen: list[str] = []
        spent = 0
        for count, word in counted:
            if count == 0:
                continue
            if spent + count > self.budget:
                break
            spent += count
            chosen.append(word)
        return chosen

    def _count(self, conn: sqlite3.Connection, word: str, total: int) -> int:
        with self._lock:
            cached = self._counts.get(word)
        if cached is not None and 0.8 * cached[1] <= total <= 1.25 * cached[1]:
            return cached[0]
        (count,) = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?)",
            (words_expression([word]), self.budget + 1),
        ).fetchone()
        with self._lock:
            if len(self._counts) >= self.cache_size:
                self._counts.clear()
            self._counts[word] = (int(count), total)
        return int(count)


def keyword_hits(
    conn: sqlite3.Connection,
    text: str,
    tenant_id: str,
    limit: int,
    *,
    planner: TermPlanner,
    total: int,
    share: float,
) -> list[str]:
    """Memory ids of the tenant's best keyword matches (bm25), best first.

    ``total`` is how many memories the file holds and ``share`` the tenant's
    part of them. A tenant holding most rows is filtered after ranking (its
    rows are most of the matches anyway, and restricting the MATCH would walk
    its whole token list); a smaller one is restricted inside the MATCH so
    that other tenants' rows cannot crowd it out.
    """
    words = planner.choose(conn, terms(text), total) if limit > 0 else []
    if not words:
        return []
    restrict = share < 0.5
    expression = words_expression(words)
    if restrict:
        expression = f"tenant_id : {quote(tenant_id)} AND {expression}"
    try:
        rows = conn.execute(
            "SELECT m.id, m.tenant_id FROM memories_fts f JOIN memories m ON m.rowid = f.rowid"
            " WHERE memories_fts MATCH ? ORDER BY f.rank LIMIT ?",
            # Unrestricted, other tenants' rows take their share of the ranking.
            (expression, limit if restrict else int(limit / max(share, 0.5)) + 16),
        ).fetchall()
    except sqlite3.OperationalError as e:
        # A tenant id that tokenises to nothing makes its column filter an
        # empty phrase: rank without it and filter the tenant after.
        if not restrict or "fts5" not in str(e).lower():
            raise
        rows = conn.execute(
            "SELECT m.id, m.tenant_id FROM memories_fts f JOIN memories m ON m.rowid = f.rowid"
            " WHERE memories_fts MATCH ? AND m.tenant_id = ? ORDER BY f.rank LIMIT ?",
            (words_expression(words), tenant_id, limit),
        ).fetchall()
    return [mid for mid, tenant in rows if tenant == tenant_id][:limit]
