"""Fixed 10 ms analysis windows over an audio block, computed for the whole block at once.

Windows restart at each block so that time always comes from the block's PTS,
never from counting samples across blocks (docs/media.md trap 2).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from avwatch.types import AudioBlock, MediaTime

WINDOW_S = 0.010

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def window_edges(block: AudioBlock, window_s: float = WINDOW_S) -> tuple[int, FloatArray]:
    """Window size in samples, and the media time of every window edge (len = windows + 1)."""
    size = max(1, round(block.sample_rate * window_s))
    n = block.samples.shape[1]
    cuts = np.append(np.arange(0, n, size), n)
    return size, block.time + cuts / block.sample_rate


def per_window(values: npt.NDArray[np.generic], size: int, reduce: str) -> FloatArray:
    """Reduce (channels, n) values per window along time: "mean" or "sum" -> (channels, windows)."""
    channels, n = values.shape
    full = n // size
    head = values[:, : full * size].reshape(channels, full, size)
    parts = [getattr(head, reduce)(axis=2, dtype=np.float64)]
    if n % size:
        parts.append(getattr(values[:, full * size :], reduce)(axis=1, dtype=np.float64)[:, None])
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def runs(flags: BoolArray, edges: FloatArray) -> Iterator[tuple[bool, MediaTime, MediaTime]]:
    """Collapse per-window flags into (flag, start, end) runs: one tracker update per run."""
    change = np.flatnonzero(flags[1:] != flags[:-1]) + 1
    bounds = np.concatenate(([0], change, [len(flags)]))
    for a, b in pairwise(bounds):
        yield bool(flags[a]), float(edges[a]), float(edges[b])
