"""The queued-ingest bench (``bench.queued``) runs end to end on a small N.

A real memoryd subprocess with ``MEMORYD_QUEUED_INGEST=1``, driven over HTTP.
It asserts only that queued ingest works (answers ``queued``, the queue
empties, every conversation is found): never timing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bench._corpus import Corpus
from bench.queued import measure, render

from bench import locomo_eval as le

pytestmark = pytest.mark.slow

LOCOMO = le.DEFAULT_PATH
MESSAGES = 120


def test_queued_ingest_answers_queued_and_every_conversation_is_found(tmp_path: Path) -> None:
    if not LOCOMO.exists():
        pytest.skip(f"{LOCOMO} is not there")
    corpus = Corpus(le.load_locomo(LOCOMO))
    result = measure(tmp_path, corpus, MESSAGES)
    assert result.messages == MESSAGES
    assert result.conversations >= 2
    assert result.queued == result.conversations  # every new conversation was queued
    assert result.found == result.conversations
    assert result.done_seconds >= result.answered_seconds > 0
    assert "messages/s to done" in render(result)
