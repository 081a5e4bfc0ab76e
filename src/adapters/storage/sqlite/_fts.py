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

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

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


def match_expression(text: str, tenant_id: str) -> str | None:
    """The MATCH expression for a query, or None when it has no searchable words."""
    words = terms(text)
    if not words:
        return None
    words_expr = " OR ".join(quote(w) for w in words)
    return f"tenant_id : {quote(tenant_id)} AND text : ({words_expr})"


def keyword_hits(conn: sqlite3.Connection, text: str, tenant_id: str, limit: int) -> list[str]:
    """Memory ids of the tenant's best keyword matches (bm25), best first."""
    expression = match_expression(text, tenant_id)
    if expression is None or limit <= 0:
        return []
    try:
        rows = conn.execute(
            "SELECT m.id, m.tenant_id FROM memories_fts f JOIN memories m ON m.rowid = f.rowid"
            " WHERE memories_fts MATCH ? ORDER BY f.rank LIMIT ?",
            (expression, limit),
        ).fetchall()
    except sqlite3.OperationalError as e:
        # A tenant id that tokenises to nothing makes the column filter an
        # empty phrase; fall back to filtering the tenant after the match.
        if "fts5" not in str(e).lower() and "syntax" not in str(e).lower():
            raise
        rows = conn.execute(
            "SELECT m.id, m.tenant_id FROM memories_fts f JOIN memories m ON m.rowid = f.rowid"
            " WHERE memories_fts MATCH ? AND m.tenant_id = ? ORDER BY f.rank LIMIT ?",
            (f"text : ({' OR '.join(quote(w) for w in terms(text))})", tenant_id, limit),
        ).fetchall()
    return [mid for mid, tenant in rows if tenant == tenant_id]
