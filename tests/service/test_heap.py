"""A pinned mmap threshold: large blocks keep mappings of their own, which go back to
the system when freed, after a larger block has come and gone."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

# In a fresh interpreter: a freed 8 MiB block raises glibc's unpinned threshold to
# 8 MiB, so a 1 MiB block after it comes from the arena (0 more bytes mapped) unless
# the threshold is pinned.
MAPPED_AFTER_A_LARGE_FREE = """
import ctypes, sys
from avwatch.service.heap import pin_mmap_threshold

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    ).split()]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "pinned":
    assert pin_mmap_threshold()
libc.free(libc.malloc(8 << 20))
before = libc.mallinfo2().hblkhd
block = libc.malloc(1 << 20)
print(libc.mallinfo2().hblkhd - before)
libc.free(block)
"""


def mapped_after_a_large_free(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", MAPPED_AFTER_A_LARGE_FREE, mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout)


def glibc_with_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")
    except OSError:
        return False


@pytest.mark.skipif(not glibc_with_mallinfo2(), reason="glibc 2.33 or later only")
def test_a_large_block_is_mapped_on_its_own_once_the_threshold_is_pinned():
    assert mapped_after_a_large_free("unpinned") == 0
    assert mapped_after_a_large_free("pinned") >= 1 << 20
