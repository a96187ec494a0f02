"""glibc's malloc told to give freed memory back, so a process that runs for weeks
does not creep.

A monitor allocates and frees large blocks all day: decoded pictures, I-frame
packets, audio buffers. glibc serves blocks over its mmap threshold (128 KiB at
first) from their own mappings, which go back to the system when freed; but each
such free raises the threshold to that size (up to 32 MiB), and from then on those
blocks come from the arenas, where blocks kept for seconds (the evidence ring's
packets) sit between them and the freed room cannot be handed back. Resident
memory then grows with nothing leaked. Pinning the threshold keeps large blocks in
mappings of their own.

Elsewhere than glibc (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache

__all__ = ["MMAP_THRESHOLD", "pin_mmap_threshold"]

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, kept from moving


@cache
def pin_mmap_threshold() -> bool:
    """Pins glibc's mmap threshold for this process; True where it was set."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False  # not glibc
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        log.warning("malloc's mmap threshold could not be pinned")
        return False
    return True
