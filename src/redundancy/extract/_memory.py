"""Keep the C heap from growing with the number of batches (glibc only)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

logger = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3
_THRESHOLD = 256 * 1024


def bound_heap() -> bool:
    """Fix glibc's mmap threshold at 256 KiB; return whether it was set.

    Why: glibc raises its mmap threshold each time a large block is freed, after which the large,
    differently shaped activation buffers of length-sorted batches come from the heap and fragment
    it; peak memory then grows with the number of batches (measured: +17% from 1,000 to 12,544 EWT
    sentences). With a fixed threshold every large buffer is mapped and returned on free (+9%).
    Process-wide and harmless elsewhere; a no-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD))
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    logger.debug("glibc mmap threshold fixed at %d bytes: %s", _THRESHOLD, ok)
    return ok
