"""Live input read in batches: what decoding costs depends on how it is fed.

A monitor that decodes each packet of a live stream the moment it arrives runs
the decoder cold: between two pictures of one stream, the sleep and the other
streams on the core push its reference pictures and code out of the CPU caches.
On a 576i H.264 stream (`avwatch bench streams`) one monitor decoding picture by
picture at real-time pace cost 0.078 CPU-seconds per second of media, against
0.050 for the same work done in one go. So a reader that has caught up with its
source waits a little before reading on, and the decoder then gets what arrived
meanwhile in one batch. The price is up to ``batch_s`` more latency.

The wait never outlasts what the source's buffer can hold: a UDP socket drops
what does not fit, so there the wait is bounded by the buffer's size at the
rate seen so far (no wait before that rate is known).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Batcher"]

# Measure the rate over at least this long before trusting it with a bounded buffer.
_MIN_RATE_WINDOW_S = 1.0
# Wait for at most this share of the time the buffer takes to fill.
_BUFFER_MARGIN = 0.5


class Batcher:
    def __init__(
        self,
        batch_s: float,
        capacity_bytes: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.batch_s = batch_s
        self.capacity_bytes = capacity_bytes
        self._clock = clock
        self._sleep = sleep
        self._first: tuple[float, int] | None = None  # (time, bytes) of the first data

    def hold_s(self, position: int) -> float:
        """How long a reader that has read ``position`` bytes and found nothing new
        may wait before reading on."""
        if self.batch_s <= 0 or position <= 0:
            return 0.0
        now = self._clock()
        if self._first is None:
            self._first = (now, position)
        if self.capacity_bytes is None:
            return self.batch_s
        since, start = self._first
        if now - since < _MIN_RATE_WINDOW_S or position <= start:
            return 0.0
        rate = (position - start) / (now - since)
        return min(self.batch_s, _BUFFER_MARGIN * self.capacity_bytes / rate)

    def wait(self, position: int, since: float | None = None) -> None:
        """The reader caught up with its source (at ``since``, on this clock, if it
        knows when): let a batch arrive."""
        hold = self.hold_s(position)
        if since is not None:
            hold -= self._clock() - since
        if hold > 0:
            self._sleep(hold)
