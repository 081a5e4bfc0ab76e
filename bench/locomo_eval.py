"""LoCoMo retrieval evaluation: data loading, evidence cleaning, metrics, BM25.

Plain module (stdlib + numpy), no server code. It turns ``locomo10.json`` into
sessions of turns, cleans the evidence ids of the questions, scores ranked lists
of dialog ids (R@1, R@5, R@10, MRR) and holds a BM25 reference retriever.

Protocol: every question is searched within its own sample; the ranked results
are expanded, in rank order, into the dialog ids of the messages each result came
from and the first k distinct ids are kept (k counts turns).  Parameters are to be
chosen on conversations 0-4 ("dev") and reported on 5-9 ("held-out").

Run ``python bench/locomo_eval.py [path/to/locomo10.json]`` for the BM25 table.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_PATH = Path("/work/shared/bench/locomo10.json")
KS: tuple[int, ...] = (1, 5, 10)
CATEGORIES: tuple[int, ...] = (1, 2, 3, 4, 5)
DEV_CONVERSATIONS: tuple[int, ...] = (0, 1, 2, 3, 4)
HELDOUT_CONVERSATIONS: tuple[int, ...] = (5, 6, 7, 8, 9)

_SESSION_KEY = re.compile(r"session_(\d+)")
_DIA_ID = re.compile(r"D:?(\d+):0*(\d+)")
_WORD = re.compile(r"\w+")

#: English stopwords (NLTK's list plus "would", "could"), dropped from keyword queries.
_STOPWORD_TEXT = """a about above after again against all am an and any are as at be because been
    before being below between both but by can could d did do does doing don down during
    each few for from further had has have having he her here hers herself him himself his
    how i if in into is it its itself just ll m me more most my myself no nor not now o of
    off on once only or other our ours ourselves out over own re s same she should so some
    such t than that the their theirs them themselves then there these they this those
    through to too under until up ve very was we were what when where which while who whom
    why will with would y you your yours yourself yourselves"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Turn:
    """One message of a conversation."""

    dia_id: str
    speaker: str
    text: str
    session: int
    date_time: str
    has_image: bool = False


@dataclass(frozen=True)
class Session:
    """One session: the turns of one sitting, with its date/time string."""

    index: int
    date_time: str
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class Question:
    """A question with its cleaned evidence dialog ids."""

    question: str
    category: int
    evidence: tuple[str, ...]
    answer: str = ""


@dataclass
class Sample:
    """One LoCoMo conversation (a sample) with its questions."""

    index: int
    sample_id: str
    speakers: tuple[str, ...]
    sessions: list[Session]
    questions: list[Question]
    skipped_questions: int = 0
    fixed_questions: int = 0

    @property
    def turns(self) -> list[Turn]:
        """All turns of all sessions, in conversation order."""
        return [turn for session in self.sessions for turn in session.turns]


def turn_text(raw: Mapping[str, Any]) -> str:
    """The text of a raw turn; an image turn gets its caption appended."""
    text = str(raw.get("text", "")).strip()
    caption = str(raw.get("blip_caption") or "").strip()
    if not caption:
        return text
    photo = f"[shares a photo: {caption}]"
    return f"{text} {photo}" if text else photo


def parse_date_time(value: str) -> datetime | None:
    """A session date/time such as ``"1:56 pm on 8 May, 2023"`` (None if unparsable)."""
    try:
        return datetime.strptime(value.replace(",", "").strip(), "%I:%M %p on %d %B %Y")
    except ValueError:
        return None


def parse_sessions(conversation: Mapping[str, Any]) -> list[Session]:
    """The sessions of a raw ``conversation`` dict, in session order."""
    sessions: list[Session] = []
    for key, value in conversation.items():
        match = _SESSION_KEY.fullmatch(key)
        if not match or not isinstance(value, list):
            continue
        index = int(match.group(1))
        date_time = str(conversation.get(f"session_{index}_date_time", ""))
        turns = tuple(_parse_turn(raw, index, date_time) for raw in value)
        sessions.append(Session(index, date_time, turns))
    sessions.sort(key=lambda session: session.index)
    return sessions


def _parse_turn(raw: Mapping[str, Any], session: int, date_time: str) -> Turn:
    return Turn(
        dia_id=str(raw["dia_id"]).strip(),
        speaker=str(raw["speaker"]),
        text=turn_text(raw),
        session=session,
        date_time=date_time,
        has_image=bool(raw.get("blip_caption")),
    )


def split_evidence(raw_ids: Iterable[object]) -> list[str]:
    """Split and normalise raw evidence entries into candidate dialog ids.

    Handles ``"D8:6; D9:17"`` and ``"D9:1 D4:4"`` (several ids in one entry),
    ``"D:11:26"`` (stray colon) and ``"D30:05"`` (zero padding); anything
    that does not look like ``D<session>:<turn>`` is dropped.
    """
    ids: list[str] = []
    for raw in raw_ids:
        for session, turn in _DIA_ID.findall(str(raw)):
            ids.append(f"D{int(session)}:{int(turn)}")
    return ids


def clean_evidence(raw_ids: Iterable[object], valid: set[str]) -> list[str]:
    """Distinct normalised evidence ids that exist in the sample, in order."""
    kept: list[str] = []
    for dia_id in split_evidence(raw_ids):
        if dia_id in valid and dia_id not in kept:
            kept.append(dia_id)
    return kept


def parse_sample(index: int, raw: Mapping[str, Any]) -> Sample:
    """A :class:`Sample` from one raw LoCoMo entry.

    Questions whose evidence needed cleaning are counted in ``fixed_questions``;
    those with no evidence left are skipped and counted in ``skipped_questions``.
    """
    conversation: Mapping[str, Any] = raw["conversation"]
    sessions = parse_sessions(conversation)
    valid = {turn.dia_id for session in sessions for turn in session.turns}
    speakers = tuple(
        str(conversation[key]) for key in ("speaker_a", "speaker_b") if key in conversation
    )
    sample = Sample(index, str(raw.get("sample_id", index)), speakers, sessions, [])
    for qa in raw.get("qa", []):
        raw_ids = list(qa.get("evidence", []))
        evidence = clean_evidence(raw_ids, valid)
        if [str(x) for x in raw_ids] != evidence:
            sample.fixed_questions += 1
        if not evidence:
            sample.skipped_questions += 1
            continue
        answer = qa.get("answer", qa.get("adversarial_answer", ""))
        question = Question(str(qa["question"]), int(qa["category"]), tuple(evidence), str(answer))
        sample.questions.append(question)
    return sample


def load_locomo(path: str | Path = DEFAULT_PATH) -> list[Sample]:
    """All samples of a ``locomo10.json`` file, in file order."""
    with open(path, encoding="utf-8") as handle:
        raw = json.load(handle)
    return [parse_sample(index, entry) for index, entry in enumerate(raw)]


# ------------------------------------------------------------------------ metrics


def expand(results: Iterable[Sequence[str]], k: int | None = None) -> list[str]:
    """Dialog ids of ranked results, in rank order, without repeats.

    Each result is the sequence of dialog ids of the messages it came from (a
    memory spanning three turns gives three ids).  With ``k``, stop after ``k``
    distinct ids: k counts turns, not results.
    """
    seen: set[str] = set()
    ids: list[str] = []
    for result in results:
        for dia_id in result:
            if dia_id in seen:
                continue
            seen.add(dia_id)
            ids.append(dia_id)
            if k is not None and len(ids) >= k:
                return ids
    return ids


def recall_at(ranked: Sequence[str], evidence: Sequence[str], k: int) -> float:
    """Fraction of ``evidence`` found among the first ``k`` ranked ids."""
    top = set(ranked[:k])
    return sum(1 for dia_id in evidence if dia_id in top) / len(evidence)


def reciprocal_rank(ranked: Sequence[str], evidence: Sequence[str]) -> float:
    """1 / rank of the first evidence id in ``ranked`` (0 when absent)."""
    wanted = set(evidence)
    for rank, dia_id in enumerate(ranked, start=1):
        if dia_id in wanted:
            return 1.0 / rank
    return 0.0


@dataclass(frozen=True)
class Scored:
    """Metrics of one question."""

    sample: int
    category: int
    recalls: tuple[float, ...]
    rr: float


def score_question(
    sample: int, question: Question, ranked: Sequence[str], ks: Sequence[int] = KS
) -> Scored:
    """Metrics of one question given its expanded ranked dialog ids."""
    recalls = tuple(recall_at(ranked, question.evidence, k) for k in ks)
    rr = reciprocal_rank(ranked, question.evidence)
    return Scored(sample, question.category, recalls, rr)


Ranker = Callable[[Sample, Question], Sequence[str]]


def evaluate(samples: Iterable[Sample], ranker: Ranker) -> list[Scored]:
    """Score every question; ``ranker`` returns its expanded dialog ids."""
    scored: list[Scored] = []
    for sample in samples:
        for question in sample.questions:
            ranked = ranker(sample, question)
            scored.append(score_question(sample.index, question, ranked))
    return scored


@dataclass(frozen=True)
class Summary:
    """Averaged metrics of a group of questions."""

    label: str
    count: int
    recalls: tuple[float, ...]
    mrr: float


def summarise(label: str, scored: Sequence[Scored]) -> Summary:
    """Mean recalls and MRR of ``scored`` (zeros when empty)."""
    if not scored:
        return Summary(label, 0, tuple(0.0 for _ in KS), 0.0)
    recalls = np.mean([s.recalls for s in scored], axis=0)
    mrr = float(np.mean([s.rr for s in scored]))
    return Summary(label, len(scored), tuple(float(r) for r in recalls), mrr)


def select(
    scored: Iterable[Scored],
    categories: Iterable[int] | None = None,
    samples: Iterable[int] | None = None,
) -> list[Scored]:
    """The scored questions in ``categories`` and ``samples`` (None = all)."""
    cats = set(categories) if categories is not None else None
    idx = set(samples) if samples is not None else None
    return [
        s
        for s in scored
        if (cats is None or s.category in cats) and (idx is None or s.sample in idx)
    ]


def breakdown(scored: Sequence[Scored], samples: Iterable[int] | None = None) -> list[Summary]:
    """Per category 1-5, then categories 1-4 together."""
    rows = [summarise(f"cat {c}", select(scored, [c], samples)) for c in CATEGORIES]
    rows.append(summarise("cat 1-4", select(scored, (1, 2, 3, 4), samples)))
    return rows


def report(scored: Sequence[Scored]) -> dict[str, list[Summary]]:
    """Breakdowns for dev (conv 0-4), held-out (conv 5-9) and all."""
    return {
        "dev conv 0-4": breakdown(scored, DEV_CONVERSATIONS),
        "held-out conv 5-9": breakdown(scored, HELDOUT_CONVERSATIONS),
        "all conv 0-9": breakdown(scored),
    }


def format_report(tables: Mapping[str, Sequence[Summary]]) -> str:
    """Plain-text tables of :func:`report`'s output."""
    header = f"{'group':<10}{'n':>6}" + "".join(f"{f'R@{k}':>8}" for k in KS) + f"{'MRR':>8}"
    lines: list[str] = []
    for title, rows in tables.items():
        lines += [title, header]
        for row in rows:
            cells = "".join(f"{r:8.3f}" for r in row.recalls)
            lines.append(f"{row.label:<10}{row.count:>6}{cells}{row.mrr:8.3f}")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- BM25


def tokenize(text: str) -> list[str]:
    """Simple lowercase word tokens."""
    return _WORD.findall(text.lower())


def keyword_query(text: str) -> str:
    """Query tokens without stopwords (all tokens if nothing else is left)."""
    tokens = tokenize(text)
    kept = [token for token in tokens if token not in STOPWORDS]
    return " ".join(kept or tokens)


class BM25:
    """Okapi BM25 over a fixed list of documents (k1=1.2, b=0.75).

    idf = ln(1 + (N - df + 0.5) / (df + 0.5)), which is never negative.
    """

    def __init__(self, documents: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self.docs = [Counter(tokenize(doc)) for doc in documents]
        self.lengths = np.array([sum(doc.values()) for doc in self.docs], dtype=float)
        self.avg_length = float(self.lengths.mean()) if self.docs else 0.0
        self.postings: dict[str, list[tuple[int, int]]] = {}
        for index, doc in enumerate(self.docs):
            for term, tf in doc.items():
                self.postings.setdefault(term, []).append((index, tf))

    def idf(self, term: str) -> float:
        """Inverse document frequency of ``term``."""
        df = len(self.postings.get(term, ()))
        return math.log(1.0 + (len(self.docs) - df + 0.5) / (df + 0.5))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query`` (repeated terms count once)."""
        scores = np.zeros(len(self.docs))
        norm = self.k1 * (1.0 - self.b + self.b * self.lengths / max(self.avg_length, 1e-9))
        for term in dict.fromkeys(tokenize(query)):
            idf = self.idf(term)
            for index, tf in self.postings.get(term, ()):
                scores[index] += idf * tf * (self.k1 + 1.0) / (tf + norm[index])
        return scores

    def rank(self, query: str) -> list[int]:
        """Document indexes, best first (ties in document order)."""
        scores = self.scores(query)
        return [int(i) for i in np.argsort(-scores, kind="stable")]


def bm25_ranker(speaker: bool = False, drop_stopwords: bool = False) -> Ranker:
    """A ranker with one BM25 document per turn, indexed once per sample.

    ``speaker`` indexes ``"Name: text"`` instead of the text alone;
    ``drop_stopwords`` removes :data:`STOPWORDS` from the query.
    """
    cache: dict[int, tuple[BM25, list[str]]] = {}

    def document(turn: Turn) -> str:
        return f"{turn.speaker}: {turn.text}" if speaker else turn.text

    def rank(sample: Sample, question: Question) -> list[str]:
        if sample.index not in cache:
            turns = sample.turns
            cache[sample.index] = (BM25([document(t) for t in turns]), [t.dia_id for t in turns])
        index, ids = cache[sample.index]
        query = keyword_query(question.question) if drop_stopwords else question.question
        return expand([ids[i]] for i in index.rank(query))

    return rank


def main(argv: Sequence[str]) -> int:
    """Print the BM25 reference table."""
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_PATH
    samples = load_locomo(path)
    skipped = sum(sample.skipped_questions for sample in samples)
    fixed = sum(sample.fixed_questions for sample in samples)
    kept = sum(len(sample.questions) for sample in samples)
    turns = sum(len(sample.turns) for sample in samples)
    print(f"{len(samples)} samples, {turns} turns, {kept} questions kept")
    print(f"evidence cleaned in {fixed} questions, {skipped} skipped (no evidence left)\n")
    variants = (
        ("BM25 plain: turn text, full question", False, False),
        ("BM25 'Name: text', question without stopwords", True, True),
    )
    for title, speaker, drop in variants:
        print(f"{title} (k1=1.2, b=0.75, one document per turn, lowercase \\w+ tokens)")
        print(format_report(report(evaluate(samples, bm25_ranker(speaker, drop)))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
