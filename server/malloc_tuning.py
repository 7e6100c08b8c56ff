"""The C allocator as a served process wants it: large blocks given back when freed.

glibc serves a block of M_MMAP_THRESHOLD or more (128 KiB at first) with a mapping
of its own, returned to the system when freed; but each such block freed raises the
threshold to its size (up to 32 MiB), so that the next ones of that size come from
the heap, and freed there they stay in the process. After 300 gRPC requests of
9 MiB (refused, every one), an idle server kept 358 MB; malloc_trim gave back all
but 113 MB of it, and so did fewer arenas not (MALLOC_ARENA_MAX=2: 382 MB). With the
threshold fixed at LARGE_BLOCK_BYTES, the same load left 99 MB: the blocks of large
requests, their messages and the store's batches are mapped and unmapped each time
(a few hundred microseconds a megabyte, against the work of reading one).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

LARGE_BLOCK_BYTES = 1 << 20
M_MMAP_THRESHOLD = -3  # mallopt's parameter (malloc.h)
# glibc's own ways to set it, which a person may take instead (then left as set)
_GIVEN_VARIABLE, _GIVEN_TUNABLE = "MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold"


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold at LARGE_BLOCK_BYTES; False where the C library is
    not glibc, or the threshold was set by the environment."""
    if _GIVEN_VARIABLE in os.environ or _GIVEN_TUNABLE in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # (not glibc: musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    if mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES) != 1:
        log.warning("the C library refused mallopt(M_MMAP_THRESHOLD): freed large "
                    "blocks may stay in the process")
        return False
    return True
