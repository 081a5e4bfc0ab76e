"""The local MiniLM session's threads sleep when idle instead of spinning."""

from __future__ import annotations

import pytest

from memoryd.adapters.embedding import MiniLMEncoder

pytest.importorskip("onnxruntime")


def test_idle_intra_op_threads_do_not_spin() -> None:
    encoder = MiniLMEncoder(threads=2)
    encoder.load()
    options = encoder._session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    vectors = encoder.encode(["spinning threads", "sleeping threads"], query=False)
    assert vectors.shape == (2, 384)
