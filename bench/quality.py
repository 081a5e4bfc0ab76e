"""Retrieval quality on LoCoMo, through memoryd's HTTP API, with BM25 as the reference.

Protocol (issue 4): each session of a sample is one conversation, tagged with
the sample id; each speaker is the message ``name`` (the first speaker
``user``, the other ``assistant``); every message carries the session date as
its ``timestamp`` and the conversation carries it in ``metadata``; image turns
carry their caption in the text. Each question is searched inside its
sample's tag; the results are expanded, in rank order, into the dialog ids of
the messages they came from, keeping the first k distinct ids (k counts
turns). The metrics, the evidence cleaning and BM25 are ``bench.locomo_eval``'s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import define, field

from bench import locomo_eval as le
from bench._corpus import locomo_sessions
from bench._http import Client
from bench._stats import Latency

#: Results asked for per question: enough to fill 10 distinct turns even when
#: memories overlap (windows of turns); the ranking does not depend on it.
SEARCH_LIMIT = 30


@define
class QualityResult:
    samples: list[int]
    turns: int
    conversations: int
    memories: int
    questions: int
    skipped: int
    fixed: int
    ingest_seconds: float
    search_latency: Latency
    memoryd: dict[str, list[le.Summary]]
    bm25: dict[str, list[le.Summary]]
    bm25_full: dict[str, list[le.Summary]] = field(factory=dict)
    #: Every question's metrics, in the order the samples list them (for paired comparisons).
    scored: list[le.Scored] = field(factory=list)


def subset(sample: le.Sample, sessions: int | None) -> le.Sample:
    """The sample cut to its first ``sessions`` sessions, with the questions they can answer."""
    if sessions is None or sessions >= len(sample.sessions):
        return sample
    kept = sample.sessions[:sessions]
    ids = {t.dia_id for s in kept for t in s.turns}
    questions = [q for q in sample.questions if set(q.evidence) <= ids]
    return le.Sample(
        sample.index,
        sample.sample_id,
        sample.speakers,
        kept,
        questions,
        skipped_questions=sample.skipped_questions,
        fixed_questions=sample.fixed_questions,
    )


async def ingest_locomo(api: Client, samples: Sequence[le.Sample]) -> tuple[int, int]:
    """Every session as one conversation; returns (conversations, memories)."""
    bodies: list[dict[str, Any]] = []
    for sample in samples:
        for conversation_id, messages, when in locomo_sessions(sample):
            bodies.append(
                {
                    "conversationId": conversation_id,
                    "containerTags": [sample.sample_id],
                    "metadata": {"sample": sample.sample_id, "sessionDate": when},
                    "messages": messages,
                }
            )
    memories = 0
    queue = iter(bodies)

    async def worker() -> None:
        nonlocal memories
        for body in queue:
            answer = await api.post("/v4/conversations", body)
            memories += int(answer["memoriesAdded"])

    await asyncio.gather(*(worker() for _ in range(4)))
    return len(bodies), memories


def dialog_ids(
    results: Sequence[Mapping[str, Any]], sessions: Mapping[str, le.Session]
) -> list[list[str]]:
    """Each result as the dialog ids of its messages, in rank order."""
    expanded: list[list[str]] = []
    for r in results:
        session = sessions.get(str(r["conversationId"]))
        if session is None:
            continue
        expanded.append(
            [session.turns[p].dia_id for p in r["positions"] if 0 <= p < len(session.turns)]
        )
    return expanded


async def search_questions(
    api: Client, samples: Sequence[le.Sample]
) -> tuple[list[le.Scored], list[float]]:
    jobs = [(sample, q) for sample in samples for q in sample.questions]
    sessions = {
        f"{sample.sample_id}-s{session.index}": session
        for sample in samples
        for session in sample.sessions
    }
    scored: list[le.Scored | None] = [None] * len(jobs)
    latencies: list[float] = []
    cursor = iter(range(len(jobs)))

    async def worker() -> None:
        for i in cursor:
            sample, question = jobs[i]
            body = {"q": question.question, "containerTags": [sample.sample_id]}
            answer, ms = await api.search({**body, "limit": SEARCH_LIMIT})
            latencies.append(ms)
            ranked = le.expand(dialog_ids(answer["results"], sessions))
            scored[i] = le.score_question(sample.index, question, ranked)

    await asyncio.gather(*(worker() for _ in range(4)))
    return [s for s in scored if s is not None], latencies


#: English stopwords (NLTK's list, with "would" and "could"), dropped from BM25 queries.
_STOPWORD_TEXT = """a about above after again against all am an and any are as at be because been
    before being below between both but by can could d did do does doing don down during each few
    for from further had has have having he her here hers herself him himself his how i if in into
    is it its itself just ll m me more most my myself no nor not now o of off on once only or other
    our ours ourselves out over own re s same she should so some such t than that the their theirs
    them themselves then there these they this those through to too under until up ve very was we
    were what when where which while who whom why will with would y you your yours yourself
    yourselves"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def bm25_ranker() -> le.Ranker:
    """BM25 (k1 = 1.2, b = 0.75) with one "Name: text" document per turn, indexed per sample.

    The question is searched without stopwords (all its words if nothing else
    is left). ``locomo_eval.BM25`` scores; this is the variant whose numbers
    issue 4 quotes (R@5 0.50, R@10 0.57 on categories 1–4 of the whole file).
    """
    cache: dict[int, tuple[le.BM25, list[str]]] = {}

    def rank(sample: le.Sample, question: le.Question) -> list[str]:
        if sample.index not in cache:
            turns = sample.turns
            documents = [f"{t.speaker}: {t.text}" for t in turns]
            cache[sample.index] = (le.BM25(documents), [t.dia_id for t in turns])
        index, ids = cache[sample.index]
        words = le.tokenize(question.question)
        query = " ".join([w for w in words if w not in STOPWORDS] or words)
        return le.expand([ids[i]] for i in index.rank(query))

    return rank


def bm25_reference(samples: Sequence[le.Sample]) -> dict[str, list[le.Summary]]:
    """BM25 over the same turns, scored like memoryd."""
    return le.report(le.evaluate(samples, bm25_ranker()))


async def run_quality(
    api: Client, all_samples: Sequence[le.Sample], *, pick: Sequence[int], sessions: int | None
) -> QualityResult:
    samples = [subset(all_samples[i], sessions) for i in pick]
    started = time.perf_counter()
    conversations, memories = await ingest_locomo(api, samples)
    ingest_seconds = time.perf_counter() - started
    scored, latencies = await search_questions(api, samples)
    full = len(pick) == len(all_samples) and sessions is None
    return QualityResult(
        samples=list(pick),
        turns=sum(len(s.turns) for s in samples),
        conversations=conversations,
        memories=memories,
        questions=len(scored),
        skipped=sum(s.skipped_questions for s in samples),
        fixed=sum(s.fixed_questions for s in samples),
        ingest_seconds=ingest_seconds,
        search_latency=Latency.of(latencies),
        memoryd=le.report(scored),
        bm25=bm25_reference(samples),
        bm25_full={} if full else bm25_reference(all_samples),
        scored=scored,
    )
