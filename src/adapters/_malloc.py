"""glibc's malloc arenas: at most two, so that idle threads' arenas do not hold freed memory.

glibc gives a thread that meets contention an arena of its own (up to 8 per
core), and memory freed into one is rarely handed back. The server's search,
scan, reader and embedder threads each allocate large numpy temporaries, so at
a million memories the arenas held about 140 MiB more after 60 searches than
at start (1,630 against 1,514 MiB). With two arenas the same run ended at
1,488 MiB, with the same latency (``bench/analysis.md``, "Memory at 1M").
"""

from __future__ import annotations

import ctypes
import os

#: mallopt's parameter number for the arena limit (glibc's M_ARENA_MAX).
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (unless ``MALLOC_ARENA_MAX`` is set); False if not glibc."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))
