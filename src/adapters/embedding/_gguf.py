"""Any GGUF embedding model the user supplies, run in this process by llama.cpp (``xllamacpp``).

:class:`GGUFEncoder` is a blocking :class:`EncoderModel`:
:class:`BatchingEmbedder` runs it on its worker thread, as it runs MiniLM.
What it learns from the file (:mod:`._gguf_file`, read before llama.cpp sees
it): the architecture and names, which pick the query and document prompts
(:mod:`._gguf_prompts`), the pooling type and the dimension. What we learned
of ``xllamacpp.Server`` in embedding mode by trying it:

- ``handle_embeddings({"input": [...]})`` embeds in process, with no HTTP; it
  answers OpenAI's shape, or ``{"error": {...}}``. The HTTP server still
  listens on 127.0.0.1 (a free port, a random key that nobody is told).
- A text longer than a slot's context or the physical batch is refused
  (``input (N tokens) is larger than the max context size`` / ``is too
  large``), there is no ``truncate``, and xllamacpp has no tokenizer call:
  such a text is cut by characters, in proportion to the token count the
  error reports, and tried again (llama.cpp logs each refusal on stderr).
- One slot: texts are embedded one after the other. Four slots embedded 2-3x
  the texts a second on 2 cores (a noisy measurement), but a text's vector
  then depended on the texts batched with it (cosine off by 0.1 with
  SmolLM2, mean pooling) unless ``kv_unified`` is on, and with it a slot may
  take more than ``max_tokens``: not worth it until measured on real models.
- An empty input is refused: an empty text is embedded as one space.
- Pooling ``none`` is refused by the OpenAI handler; a file that declares no
  pooling type was made for generation, and is refused unless ``pooling`` is set.
- Its threads (the compute threads, one HTTP thread, the server loop) stop
  when the ``Server`` is destroyed (:meth:`GGUFEncoder.close`).
"""

from __future__ import annotations

import importlib
import logging
import re
import secrets
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np
from attrs import define, field

from memoryd.adapters.embedding._gguf_file import POOLING_NAMES, GGUFInfo, NotGGUF, read_info
from memoryd.adapters.embedding._gguf_prompts import Prompts, prompts_for
from memoryd.adapters.embedding._vectors import FloatMatrix, empty_matrix, l2_normalise
from memoryd.core.errors import ConfigurationError, ModelUnavailable

log = logging.getLogger(__name__)

Pooling = Literal["auto", "mean", "cls", "last"]
#: How the settings are named in messages.
PATH_SETTING = "[plugins.gguf] model_path (MEMORYD_PLUGIN_GGUF__MODEL_PATH)"
POOLING_SETTING = "[plugins.gguf] pooling"
_POOLING_IDS = {"mean": 1, "cls": 2, "last": 3}
#: How llama.cpp refuses a text longer than a slot's context or the physical batch.
_TOO_LARGE = re.compile(r"input \((\d+) tokens\) is (?:too large|larger than)")

#: Tries to fit one over-long text (each cuts it further).
_CUTS = 6


def _xllamacpp() -> ModuleType:
    try:
        # 100 MB of native code: imported when the model loads, never at import time.
        return importlib.import_module("xllamacpp")
    except (ImportError, OSError) as exc:
        raise ConfigurationError(
            'embedder = "gguf" needs the xllamacpp package, which cannot be imported '
            f"({exc}): run `pip install 'memoryd[local]'`, or choose another embedder",
            details={"setting": "embedder"},
        ) from exc


def inspect_model(path: Path | None) -> GGUFInfo:
    """The file's metadata; ``ConfigurationError`` naming the setting if it is no GGUF model."""
    if path is None:
        raise ConfigurationError(
            f'embedder = "gguf" needs a GGUF embedding model: set {PATH_SETTING} to its '
            "file (e.g. an EmbeddingGemma or nomic-embed-text .gguf)",
            details={"setting": "plugins.gguf.model_path"},
        )
    try:
        return read_info(path)
    except OSError as exc:
        reason = "which is not a file" if not path.is_file() else f"which cannot be read ({exc})"
        raise ConfigurationError(
            f"{PATH_SETTING} is {path}, {reason}: set it to a GGUF embedding model",
            details={"setting": "plugins.gguf.model_path", "path": str(path)},
        ) from exc
    except NotGGUF as exc:
        raise ConfigurationError(
            f"{PATH_SETTING} is {path}, which is not a GGUF model: {exc}. Set it to a "
            ".gguf embedding model (convert others with llama.cpp's convert_hf_to_gguf.py)",
            details={"setting": "plugins.gguf.model_path", "path": str(path)},
        ) from exc


def pooling_of(info: GGUFInfo, setting: Pooling, path: Path) -> int:
    """llama.cpp's pooling type: the setting's, else the file's (which must embed)."""
    if setting != "auto":
        return _POOLING_IDS[setting]
    if info.pooling_type is not None and info.pooling_type in _POOLING_IDS.values():
        return info.pooling_type
    found = (
        "declares no pooling type (a model made for generation, not embedding)"
        if info.pooling_type is None
        else f"declares pooling {info.pooling_name!r}, which gives no sentence vector"
    )
    raise ConfigurationError(
        f"{PATH_SETTING} is {path} ({info.architecture} {info.name!r}), which {found}: "
        f"choose a GGUF embedding model, or set {POOLING_SETTING} = "
        '"mean" (or "cls", "last") to embed with it anyway',
        details={"setting": "plugins.gguf.pooling", "path": str(path)},
    )


@define(kw_only=True)
class GGUFEncoder:
    """A blocking GGUF embedding model; :class:`BatchingEmbedder` runs it off the loop.

    ``pooling`` "auto" takes the file's; ``query_prompt``/``document_prompt``
    None take the family's (:func:`prompts_for`). ``max_tokens`` is the
    longest text in tokens (capped at the model's context; longer ones are
    cut). ``threads`` 0 lets llama.cpp decide (one per physical core).
    Thread-safe: :meth:`load` may race with :meth:`encode`.
    """

    model_path: Path | None
    pooling: Pooling = "auto"
    query_prompt: str | None = None
    document_prompt: str | None = None
    max_tokens: int = 512
    threads: int = 0
    _info: GGUFInfo | None = field(default=None, init=False)
    _prompts: Prompts | None = field(default=None, init=False)
    _server: Any = field(default=None, init=False, repr=False)
    _dimension: int | None = field(default=None, init=False)
    _lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.max_tokens < 8:
            raise ConfigurationError(
                f"[plugins.gguf] max_tokens must be at least 8, not {self.max_tokens}"
            )
        if self.threads < 0:
            raise ConfigurationError(f"embedding_threads must be 0 or more, not {self.threads}")

    @property
    def model_name(self) -> str:
        """``gguf:<file stem>``: the name stored vectors are tagged with."""
        return f"gguf:{self.model_path.stem}" if self.model_path else "gguf"

    @property
    def info(self) -> GGUFInfo:
        """The file's metadata (read on first use)."""
        if self._info is None:
            self._info = inspect_model(self.model_path)
        return self._info

    @property
    def prompts(self) -> Prompts:
        """The query and document prefixes this model gets."""
        if self._prompts is None:
            info = self.info
            stem = self.model_path.stem if self.model_path else ""
            self._prompts = prompts_for(
                architecture=info.architecture,
                names=(info.name, info.basename, stem),
                query=self.query_prompt,
                document=self.document_prompt,
            )
        return self._prompts

    @property
    def dimension(self) -> int:
        """Length of every vector: what the model returns once loaded, else the file's n_embd."""
        known = self._dimension or self.info.embedding_length
        if known is not None:
            return known
        self.load()  # the file does not say: one vector does
        return self._loaded_dimension()

    def _loaded_dimension(self) -> int:
        if self._dimension is None:  # pragma: no cover - load() sets it or raises
            raise ModelUnavailable(f"The GGUF embedder {self.model_name} did not load")
        return self._dimension

    @property
    def loaded(self) -> bool:
        return self._server is not None

    def load(self) -> None:
        """Check the file, start llama.cpp on it and embed once (idempotent, blocking)."""
        with self._lock:
            if self._server is not None:
                return
            info, prompts = self.info, self.prompts
            assert self.model_path is not None  # inspect_model refused None
            pooling = pooling_of(info, self.pooling, self.model_path)
            x = _xllamacpp()
            tokens = self._server_tokens()
            params = x.CommonParams()
            params.model.path = str(self.model_path)
            params.embedding = True
            params.pooling_type = x.llama_pooling_type(pooling)
            params.offline = True
            params.hostnames = ["127.0.0.1"]
            params.port = 0
            params.api_keys = [secrets.token_urlsafe(24)]
            params.n_threads_http = 1
            # One slot, whose context and physical batch hold one whole text (a non-causal
            # model needs it in one batch). See the module's notes on parallel slots.
            params.n_parallel = 1
            params.n_ctx = params.n_batch = params.n_ubatch = tokens
            if self.threads:
                params.cpuparams.n_threads = self.threads
                params.cpuparams_batch.n_threads = self.threads
            params.verbosity = 1
            params.ui = False
            params.fit_params = False
            try:
                server = x.Server(params)
            except (RuntimeError, ValueError) as exc:
                raise ConfigurationError(
                    f"llama.cpp could not load {self.model_path} as an embedding model ({exc}; "
                    f"its errors are above): check {PATH_SETTING}",
                    details={"setting": "plugins.gguf.model_path"},
                ) from exc
            # The first call returns once the server's loop runs (destroying it before
            # could hang), and tells the vectors' length.
            first = _vectors(server.handle_embeddings({"input": ["ping"]}), 1, self.model_path)
            self._server, self._dimension = server, int(first.shape[1])
            log.info(
                "GGUF embedder %s: %s %r, family %s, pooling %s, dimension %d, %d tokens a text",
                self.model_path.name,
                info.architecture,
                info.name,
                prompts.family + (" (prompts from settings)" if prompts.overridden else ""),
                POOLING_NAMES.get(pooling, str(pooling)),
                self._dimension,
                tokens,
            )

    def encode(self, texts: Sequence[str], *, query: bool) -> FloatMatrix:
        """Unit vectors for ``texts``, in order, each with the query or document prompt."""
        if not texts:
            return empty_matrix(self.dimension)
        self.load()
        prompt = self.prompts.query_text if query else self.prompts.document_text
        inputs = [prompt(t) or " " for t in texts]
        answer = self._server.handle_embeddings({"input": inputs})
        if _too_large(answer) is None:
            return l2_normalise(_vectors(answer, len(inputs), self.model_path))
        # One of them is too long: embed each alone, cutting the long ones.
        return l2_normalise(np.concatenate([self._one(text) for text in inputs]))

    def _one(self, text: str) -> FloatMatrix:
        for _ in range(_CUTS):
            answer = self._server.handle_embeddings({"input": [text]})
            tokens = _too_large(answer)
            if tokens is None:
                return _vectors(answer, 1, self.model_path)
            limit = self._server_tokens()
            keep = max(1, min(len(text) - 1, int(len(text) * limit / tokens * 0.9)))
            text = text[:keep]
        raise ModelUnavailable(
            f"The GGUF embedder could not fit a text into {self._server_tokens()} tokens; "
            "raise [plugins.gguf] max_tokens"
        )

    def _server_tokens(self) -> int:
        return min(self.max_tokens, self.info.context_length or self.max_tokens)

    def close(self) -> None:
        """Stop llama.cpp and its threads (blocks until they have stopped); idempotent."""
        with self._lock:
            server, self._server = self._server, None
            del server  # the last reference: its destructor stops llama.cpp and joins it


def _too_large(answer: Any) -> int | None:
    """The token count of an answer refusing a text as too long, else None."""
    if isinstance(answer, dict) and "error" in answer:
        found = _TOO_LARGE.search(str(answer["error"].get("message", "")))
        return int(found.group(1)) if found else None
    return None


def _vectors(answer: Any, expected: int, path: Path | None) -> FloatMatrix:
    """The answer's embeddings in input order; ``ModelUnavailable`` for an error or odd shape."""
    if isinstance(answer, dict) and "error" in answer:
        error = answer["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise ModelUnavailable(f"llama.cpp could not embed with {path}: {message}")
    try:
        rows = sorted(answer["data"], key=lambda item: int(item["index"]))
        matrix = np.asarray([item["embedding"] for item in rows], dtype=np.float32)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelUnavailable(
            f"llama.cpp answered an embedding request with {path} oddly ({type(exc).__name__})"
        ) from exc
    if matrix.ndim != 2 or matrix.shape[0] != expected:
        raise ModelUnavailable(
            f"llama.cpp returned embeddings of shape {matrix.shape} for {expected} texts"
        )
    return matrix
