"""A measurement over a whole file in a bounded number of points, for graphs.

A two-hour file records about half a million values per signal; a graph needs a
thousand. ``WholeSeries`` keeps the minimum, maximum and mean per bucket of time and
doubles the buckets' width whenever there are too many, so memory stays flat however
long the file and a short spike still shows as a bucket's maximum.
"""

from __future__ import annotations

import math

from avwatch.types import MediaTime

__all__ = ["WholeSeries"]

FIRST_BUCKET_S = 0.1


class WholeSeries:
    def __init__(self, points: int = 1000) -> None:
        self.points = points
        self.width = FIRST_BUCKET_S
        # Bucket index (time // width) -> [min, max, sum, count].
        self._buckets: dict[int, list[float]] = {}

    def add(self, time: MediaTime, value: float) -> None:
        if not math.isfinite(value):
            return
        index = math.floor(time / self.width)
        bucket = self._buckets.get(index)
        if bucket is None:
            self._buckets[index] = [value, value, value, 1.0]
            if len(self._buckets) > self.points:
                self._widen()
        else:
            bucket[0] = min(bucket[0], value)
            bucket[1] = max(bucket[1], value)
            bucket[2] += value
            bucket[3] += 1

    def _widen(self) -> None:
        while len(self._buckets) > self.points:
            self.width *= 2
            merged: dict[int, list[float]] = {}
            for index, (low, high, total, count) in sorted(self._buckets.items()):
                into = merged.get(index // 2)
                if into is None:
                    merged[index // 2] = [low, high, total, count]
                else:
                    into[0], into[1] = min(into[0], low), max(into[1], high)
                    into[2] += total
                    into[3] += count
            self._buckets = merged

    def rows(self) -> list[tuple[MediaTime, float, float, float]]:
        """Per bucket in time order: its middle, minimum, maximum and mean."""
        return [
            ((index + 0.5) * self.width, low, high, total / count)
            for index, (low, high, total, count) in sorted(self._buckets.items())
        ]
