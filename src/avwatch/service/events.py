"""Live updates for the dashboard: a hub that fans events out to server-sent-event
clients, the recent history of each stream's signals, and the plots they are drawn in.

Events are published from the service's message thread and consumed on the
API's event loop, so each subscriber is an ``asyncio.Queue`` fed with
``call_soon_threadsafe``. A slow client loses its oldest events rather than
holding anything up.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import asdict
from typing import Any

from avwatch.detectors.base import Plot, available_detectors

__all__ = ["MONITOR_PLOTS", "EventHub", "SignalHistory", "plots"]

CLIENT_QUEUE = 1000
HISTORY_POINTS = 1200  # per signal: ten minutes at two points a second

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


class EventHub:
    def __init__(self) -> None:
        self._clients: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = []
        self._lock = threading.Lock()

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(CLIENT_QUEUE)
        with self._lock:
            self._clients.append((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        with self._lock:
            self._clients = [(loop, q) for loop, q in self._clients if q is not queue]

    def publish(self, event: dict[str, Any]) -> None:
        with self._lock:
            clients = list(self._clients)
        for loop, queue in clients:
            try:
                loop.call_soon_threadsafe(_put_dropping_oldest, queue, event)
            except RuntimeError:  # that client's loop is gone
                self.unsubscribe(queue)


def _put_dropping_oldest(queue: asyncio.Queue[dict[str, Any]], event: dict[str, Any]) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(event)


class SignalHistory:
    """Per stream and signal, the latest [wall time, min, max] points."""

    def __init__(self) -> None:
        self._series: dict[str, dict[str, deque[list[float]]]] = {}
        self._lock = threading.Lock()

    def add(self, stream: str, signals: dict[str, list[list[float]]]) -> None:
        with self._lock:
            per_stream = self._series.setdefault(stream, {})
            for name, points in signals.items():
                series = per_stream.setdefault(name, deque(maxlen=HISTORY_POINTS))
                series.extend(points)

    def get(self, stream: str, since: float = 0.0) -> dict[str, list[list[float]]]:
        with self._lock:
            per_stream = self._series.get(stream, {})
            return {
                name: [p for p in series if p[0] > since] for name, series in per_stream.items()
            }

    def forget(self, stream: str) -> None:
        with self._lock:
            self._series.pop(stream, None)
