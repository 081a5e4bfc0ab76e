"""Realistic text at scale: conversations and questions recombined from LoCoMo.

LoCoMo's 5,882 turns are too few for 100k memories, so the scale benchmarks
build new conversations from them, deterministically (a seeded generator):

- a conversation takes 20–50 consecutive turns of one LoCoMo sample (crossing
  into its next session when one ends), with the two speakers renamed from a
  pool of first names (and every LoCoMo speaker name inside the text renamed
  the same way), its dates moved by up to a few years;
- half of its messages get one sentence of another random turn appended, and
  any message whose text was already used gets more, so that every message
  text of a corpus is distinct (no two memories embed the same text);
- questions are LoCoMo's questions with the names renamed and, for variety,
  one of a few conversational lead-ins; every question of a set is distinct
  after case and spacing are folded, so the search cache never answers one;
- queries of chat-message length are LoCoMo's turns, renamed, distinct in the
  same way (chat searches with the user's whole message).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from attrs import frozen

from bench.locomo_eval import Sample, Turn

_NAME_TEXT = """
    Aaliyah Aaron Abigail Adam Adrian Aiden Alex Alice Amara Amelia Ana Andre Anika Anna
    Arjun Aria Asher Ava Beatriz Ben Bianca Caleb Camila Carlos Chen Chloe Clara Daniel
    Daria David Diego Elena Eli Ella Emil Emma Eric Esther Ethan Eva Farah Felix Fiona
    Gabriel Grace Hana Hannah Harper Hector Helena Henry Ines Isaac Isabel Ivan Jack Jade
    Jamal Javier Jin Jonas Jorge Julia Kai Karim Kate Keira Kenji Lara Layla Leo Liam Lina
    Lucas Lucia Luis Maya Mateo Max Mei Mia Miguel Mila Mina Nadia Naomi Nico Nina Noah Nora
    Olga Oliver Omar Oscar Paula Priya Quinn Rafael Rania Ravi Rosa Ruby Ryan Sara Sofia
    Soren Stella Tariq Tessa Theo Uma Valeria Victor Vera Wei Yara Yusuf Zara Zoe
"""
#: First names the speakers are renamed to.
NAMES: tuple[str, ...] = tuple(_NAME_TEXT.split())

LEAD_INS: tuple[str, ...] = (
    "",
    "Do you remember: ",
    "Quick question: ",
    "I was wondering, ",
    "Remind me, ",
    "Can you tell me ",
    "Any idea ",
    "Help me recall: ",
)

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_FORMAT = "%I:%M %p on %d %B, %Y"


def session_time(date_time: str) -> datetime:
    """A LoCoMo session date (``1:56 pm on 8 May, 2023``) as an aware UTC datetime."""
    return datetime.strptime(date_time.strip(), _FORMAT).replace(tzinfo=UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@frozen
class Conversation:
    """One conversation as ``POST /v4/conversations`` takes it."""

    conversation_id: str
    messages: tuple[Mapping[str, Any], ...]
    container_tags: tuple[str, ...]
    metadata: Mapping[str, Any]

    def body(self) -> dict[str, Any]:
        return {
            "conversationId": self.conversation_id,
            "messages": list(self.messages),
            "containerTags": list(self.container_tags),
            "metadata": dict(self.metadata),
        }


class Renamer:
    """Replaces LoCoMo speaker names with other names, as whole words."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.mapping = dict(mapping)
        names = sorted(self.mapping, key=len, reverse=True)
        self._pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")

    def __call__(self, text: str) -> str:
        return self._pattern.sub(lambda m: self.mapping[m.group(1)], text)


class Corpus:
    """Conversations and questions built from LoCoMo samples (deterministic for a seed)."""

    def __init__(self, samples: Sequence[Sample], seed: int = 20240601) -> None:
        self.samples = list(samples)
        self.seed = seed
        self.speakers = sorted({s for sample in self.samples for s in sample.speakers})
        self.turns = [sample.turns for sample in self.samples]
        self.times = [[session_time(t.date_time) for t in turns] for turns in self.turns]
        self.sentences = [
            s for turns in self.turns for t in turns for s in _SENTENCE.split(t.text) if s
        ]

    def renamer(self, rng: random.Random) -> Renamer:
        picked = rng.sample(NAMES, len(self.speakers))
        return Renamer(dict(zip(self.speakers, picked, strict=True)))

    def conversations(self, messages: int, *, prefix: str = "c") -> Iterator[Conversation]:
        """Conversations until ``messages`` messages in all; every message text distinct."""
        rng = random.Random(self.seed)
        seen: set[str] = set()
        made = index = 0
        while made < messages:
            size = min(rng.randint(20, 50), messages - made)
            conversation = self._conversation(rng, index, size, seen, prefix)
            made += len(conversation.messages)
            index += 1
            yield conversation

    def _conversation(
        self, rng: random.Random, index: int, size: int, seen: set[str], prefix: str
    ) -> Conversation:
        which = rng.randrange(len(self.samples))
        sample, turns, times = self.samples[which], self.turns[which], self.times[which]
        start = rng.randrange(max(1, len(turns) - size))
        rename = self.renamer(rng)
        shift = timedelta(days=rng.randint(-1500, 600), minutes=rng.randint(0, 600))
        roles = {sample.speakers[0]: "user"} if sample.speakers else {}
        messages = []
        for offset, turn in enumerate(turns[start : start + size]):
            text = rename(turn.text)
            if rng.random() < 0.5:
                text = f"{text} {rename(rng.choice(self.sentences))}"
            while text in seen:
                text = f"{text} {rename(rng.choice(self.sentences))}"
            seen.add(text)
            when = times[start + offset] + shift + timedelta(seconds=40 * offset)
            messages.append(
                {
                    "role": roles.get(turn.speaker, "assistant"),
                    "name": rename(turn.speaker),
                    "content": text,
                    "timestamp": iso(when),
                }
            )
        return Conversation(
            conversation_id=f"{prefix}{index:06d}",
            messages=tuple(messages),
            container_tags=(f"user-{index % 100:02d}",),
            metadata={"bucket": index % 10, "source": sample.sample_id},
        )

    def questions(self, count: int, *, seed: int = 0) -> list[str]:
        """``count`` distinct questions (after case and spacing folding), in a seeded order."""
        base = [q.question for s in self.samples for q in s.questions]

        def draw(rng: random.Random) -> str:
            question, lead = rng.choice(base), rng.choice(LEAD_INS)
            text = self.renamer(rng)(question)
            return lead + text[:1].lower() + text[1:] if lead else text

        return _distinct(count, random.Random(self.seed * 31 + seed), draw)

    def turn_queries(self, count: int, *, seed: int = 0) -> list[str]:
        """``count`` distinct LoCoMo turns, renamed: queries of chat-message length.

        Chat searches with the user's whole message, which is longer than a
        question; these are the samples' turns as the speakers said them, renamed
        as the conversations are.
        """
        base = [t.text for turns in self.turns for t in turns if t.text.strip()]
        return _distinct(
            count,
            random.Random(self.seed * 37 + seed),
            lambda rng: self.renamer(rng)(rng.choice(base)),
        )


def _distinct(count: int, rng: random.Random, draw: Callable[[random.Random], str]) -> list[str]:
    """Up to ``count`` texts from ``draw``, distinct after case and spacing folding."""
    out: list[str] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < count and tries < 50 * count + 1000:
        tries += 1
        text = draw(rng)
        key = " ".join(text.split()).casefold()
        if key in seen:
            continue
        seen.add(key)
        out.append(text)
    return out


def locomo_sessions(sample: Sample) -> Iterator[tuple[str, list[dict[str, Any]], str]]:
    """The benchmark protocol's conversations of a sample: one per session.

    Yields (conversation id, messages, session date as ISO). The first speaker
    is the ``user``, the other the ``assistant``; each speaker is the message
    ``name``; every message carries the session date; image turns already
    carry their caption in the text (``locomo_eval.turn_text``).
    """
    first = sample.speakers[0] if sample.speakers else None
    for session in sample.sessions:
        when = iso(session_time(session.date_time))
        messages = [_message(turn, first, when) for turn in session.turns]
        if messages:
            yield f"{sample.sample_id}-s{session.index}", messages, when


def _message(turn: Turn, first: str | None, when: str) -> dict[str, Any]:
    return {
        "role": "user" if turn.speaker == first else "assistant",
        "name": turn.speaker,
        "content": turn.text,
        "timestamp": when,
    }
