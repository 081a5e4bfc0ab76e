"""The ``TokenCounter`` port over tiktoken, fully offline."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from attrs import define, field

from memoryd.adapters.tokens._cache import seed_cache, use_cache_dir

if TYPE_CHECKING:
    import tiktoken


@define
class TiktokenCounter:
    """Counts and truncates text in a tiktoken encoding (``cl100k_base`` or ``o200k_base``).

    Nothing is read at construction. :meth:`load` (blocking, ~0.5 s: call it
    in a thread at startup) seeds tiktoken's cache from the bundled files and
    loads the encoding; the first ``count`` or ``truncate`` does so if it has
    not run. ``cache_dir`` is where the cache goes when the user set no
    ``TIKTOKEN_CACHE_DIR`` (see :func:`use_cache_dir`); after loading it holds
    the directory actually used. Special-token text such as ``<|endoftext|>``
    is counted as ordinary text.
    """

    #: The tiktoken encoding's name (``token_encoding``).
    encoding_name: str
    cache_dir: Path | None = field(default=None, kw_only=True)
    _encoding: tiktoken.Encoding | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False)

    def load(self) -> None:
        """Seed the cache and load the encoding (idempotent, thread-safe, blocking)."""
        self._get()

    def _get(self) -> tiktoken.Encoding:
        encoding = self._encoding
        if encoding is not None:
            return encoding
        with self._lock:
            if self._encoding is None:
                import tiktoken  # loaded with the encoding, not at import

                directory = use_cache_dir(self.cache_dir)
                seed_cache(self.encoding_name, directory)
                self.cache_dir = directory
                self._encoding = tiktoken.get_encoding(self.encoding_name)
            return self._encoding

    def count(self, text: str) -> int:
        """How many tokens ``text`` is."""
        return len(self._get().encode_ordinary(text))

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of ``text`` that is at most ``max_tokens`` tokens.

        Never ends in part of a character: a token boundary inside a multi-byte
        character is moved back to the character's start.
        """
        if max_tokens < 0:
            raise ValueError(f"max_tokens must not be negative, not {max_tokens}")
        encoding = self._get()
        tokens = encoding.encode_ordinary(text)
        if len(tokens) <= max_tokens:
            return text
        keep = max_tokens
        while keep > 0:
            # The first `keep` tokens' bytes are a prefix of the text's UTF-8; a cut
            # inside a character leaves an incomplete sequence at the end only.
            prefix = encoding.decode_bytes(tokens[:keep]).decode("utf-8", errors="ignore")
            # Re-encoding a prefix can merge differently; accept it only within budget.
            if len(encoding.encode_ordinary(prefix)) <= max_tokens:
                return prefix
            keep -= 1
        return ""
