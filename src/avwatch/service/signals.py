"""Signals for plots: what detectors measure per sample, on its way to a stream page.

In the worker, ``SignalBuckets`` takes what each detector recorded since the
last status and sends, per signal and per ``BUCKET_S`` of media, the smallest
and largest value (a defect shows in the envelope) at its wall-clock time. In
the service, ``SignalHistory`` keeps the last ten minutes of those points per
stream, and ``plots()`` says which plots they are drawn in.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

from avwatch.detectors.base import Detector, Plot, available_detectors
from avwatch.service.messages import Signals
from avwatch.types import MediaTime

__all__ = ["BUCKET_S", "MONITOR_PLOTS", "SignalBuckets", "SignalHistory", "plots"]

BUCKET_S = 0.5
HISTORY_S = 600.0  # per signal, the last ten minutes of wall time

# The signals the service measures itself (service/core.py, from each status).
MONITOR_PLOTS = (
    Plot("Input bitrate (bit/s)", ("bitrate_bps",), min=0.0),
    Plot("TR 101 290 errors (this connection)", ("ts_errors",), min=0.0),
    Plot("Lag behind real time (s)", ("lag_s",), min=0.0),
)


def plots() -> list[dict[str, Any]]:
    """Every plot a stream page may show: each detector's (``detector`` names it, for
    its ``target_setting``), then the monitor's own."""
    declared: list[tuple[str | None, Plot]] = [
        (key, p) for key, cls in available_detectors().items() for p in cls.plots
    ]
    declared += [(None, p) for p in MONITOR_PLOTS]
    return [{**asdict(p), "detector": key} for key, p in declared]


class SignalBuckets:
    """One connection's signals, sent once each: per name, [wall time, min, max]."""

    def __init__(self, wall_of: Callable[[MediaTime], float]) -> None:
        self.wall_of = wall_of

    def fresh(self, detectors: Iterable[Detector[Any]]) -> Signals:
        """What the detectors recorded since the last call, bucketed. It is taken from
        them: a live detector holds only what came since the last status, not the ten
        minutes a file check keeps."""
        out: Signals = {}
        for detector in detectors:
            for name, series in detector.signals.items():
                if not series:
                    continue
                buckets: dict[int, list[float]] = {}
                for t, value in series:
                    buckets.setdefault(int(t // BUCKET_S), []).append(value)
                series.clear()
                out[name] = [
                    [round(self.wall_of(k * BUCKET_S), 3), min(v), max(v)]
                    for k, v in buckets.items()
                ]
        return out


class SignalHistory:
    """Per stream and signal, the [wall time, min, max] points of the last ``HISTORY_S``.
    Trimmed by age, not by count: a signal sampled once every few seconds would
    otherwise grow for hours before its count was reached."""

    def __init__(self) -> None:
        self._series: dict[str, dict[str, deque[list[float]]]] = {}
        self._lock = threading.Lock()

    def add(self, stream: str, signals: dict[str, list[list[float]]]) -> None:
        with self._lock:
            per_stream = self._series.setdefault(stream, {})
            for name, points in signals.items():
                series = per_stream.setdefault(name, deque())
                series.extend(points)
                if series:
                    oldest = series[-1][0] - HISTORY_S
                    while series and series[0][0] < oldest:
                        series.popleft()

    def get(self, stream: str, since: float = 0.0) -> dict[str, list[list[float]]]:
        with self._lock:
            per_stream = self._series.get(stream, {})
            return {
                name: [p for p in series if p[0] > since] for name, series in per_stream.items()
            }

    def forget(self, stream: str) -> None:
        with self._lock:
            self._series.pop(stream, None)
