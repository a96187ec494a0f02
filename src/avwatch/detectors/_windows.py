"""Split audio blocks into fixed 10 ms analysis windows, placed by the block's PTS."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from avwatch.types import AudioBlock, MediaTime

WINDOW_S = 0.010


def windows(
    block: AudioBlock, window_s: float = WINDOW_S
) -> Iterator[tuple[MediaTime, MediaTime, npt.NDArray[np.float32]]]:
    """(start, end, samples) for each window of the block; the last one may be short.

    Windows restart at each block so that time always comes from PTS, never
    from counting samples across blocks (MEDIA.md, trap 2).
    """
    size = max(1, round(block.sample_rate * window_s))
    n = block.samples.shape[1]
    rate = block.sample_rate
    for pos in range(0, n, size):
        stop = min(pos + size, n)
        yield block.time + pos / rate, block.time + stop / rate, block.samples[:, pos:stop]
