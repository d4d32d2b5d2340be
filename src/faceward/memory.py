"""Keeping a long-running server's resident memory flat.

glibc gives each thread that allocates its own malloc arena (up to 8 per core); a
server whose thread pool touches many of them fragments memory that is never
returned, and RSS creeps up with no leak behind it. Two arenas are enough for a
process whose heavy work runs in native code or in worker processes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_ARENA_MAX = -8  # from glibc's malloc.h


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas for this process (before its threads start); False where not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False


__all__ = ["limit_malloc_arenas"]
