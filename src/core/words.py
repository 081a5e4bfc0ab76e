"""The words a keyword search looks for: one rule for every index backend.

A query is cut into words (Unicode letters and digits), case folded, and
stopwords are dropped (BM25 gives them almost no weight, while matching them
makes nearly every memory a hit). Both the SQLite index and the Elasticsearch
index search these words, so their keyword sides rank the same question alike.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

#: At most this many distinct words of a query are searched.
MAX_TERMS = 32

#: Below this many memories in scope, no word is too common to search; from
#: there, a word found in more than half of the scope's memories is left out.
COMMON_FROM = 100

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
