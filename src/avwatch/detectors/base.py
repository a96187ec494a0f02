"""The detector contract, the run tracker every threshold detector shares, and the registry.

A detector is a small, pure, single-stream state machine: it is fed analysis
samples in PTS order, appends typed start/end events to ``self.events`` (the
pipeline drains them), records per-frame metrics for plots, and ``flush()``
closes whatever is open. No I/O, threads or wall clock inside.

Detectors are found through the ``avwatch.detectors`` entry point group; the
built-ins are registered there exactly like an outside plugin.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from avwatch.errors import DetectorError
from avwatch.types import (
    AudioBlock,
    DecodeIssue,
    DefectEvent,
    MediaKind,
    MediaTime,
    Severity,
    StreamInfo,
    VideoFrame,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Detector",
    "DetectorConfig",
    "RunTracker",
    "available_detectors",
    "load_detector",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "avwatch.detectors"
METRIC_HISTORY = 36_000  # ten minutes at 60 samples a second
# Containers with a millisecond time base (Matroska, FLV) round every PTS: audio
# frames then sit up to 1 ms apart or overlap. Gaps this small are not gaps, and a
# run this much shorter than a minimum duration meets it.
TIMESTAMP_JITTER_S = 0.002


class DetectorConfig(BaseModel):
    """Base of every detector's options: unknown keys are an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ConfigT = TypeVar("ConfigT", bound=DetectorConfig)


class Detector(Generic[ConfigT]):
    """Base class; subclasses set the class attributes and override the ``on_*`` they need."""

    key: ClassVar[str]
    needs: ClassVar[frozenset[MediaKind]]
    """Media kinds the detector requires; it runs only when the stream has all of them."""
    reads: ClassVar[frozenset[MediaKind] | None] = None
    """Media kinds it is fed (default: ``needs``); a kind the stream lacks is simply absent."""
    emits: ClassVar[tuple[str, ...]]
    Config: ClassVar[type[DetectorConfig]]
    description: ClassVar[str] = ""

    def __init__(self, config: ConfigT, info: StreamInfo) -> None:
        self.config = config
        self.info = info
        self.events: list[DefectEvent] = []
        self.metrics: dict[str, deque[tuple[MediaTime, float]]] = {}

    def on_video(self, frame: VideoFrame) -> None:
        """Called for each video frame, in presentation order."""

    def on_audio(self, block: AudioBlock) -> None:
        """Called for each audio block, in PTS order."""

    def on_issue(self, issue: DecodeIssue) -> None:
        """Called for decoder trouble (errors, discontinuities)."""

    def flush(self, end: MediaTime) -> None:
        """End of stream (or reconnect): close open intervals at ``end`` at the latest."""

    def summary(self) -> dict[str, Any]:
        """Whole-stream measurements for the report's ``metrics``."""
        return {}

    # -- helpers for subclasses --------------------------------------------------
    def emit(
        self,
        type_: str,
        phase: str,
        time: MediaTime,
        severity: Severity,
        key: str = "",
        **details: Any,
    ) -> None:
        assert phase in ("start", "end")
        self.events.append(
            DefectEvent(
                type=type_,
                phase=phase,  # type: ignore[arg-type]
                time=time,
                detector=self.key,
                severity=severity,
                key=key,
                details=details,
            )
        )

    def emit_changes(
        self,
        changes: Iterable[tuple[str, MediaTime]],
        type_: str,
        severity: Severity,
        key: str = "",
        **details: Any,
    ) -> None:
        """Emit what a ``RunTracker`` reported, with the same details on start and end."""
        for phase, time in changes:
            self.emit(type_, phase, time, severity, key, **details)

    def record(self, name: str, time: MediaTime, value: float) -> None:
        """Keep a per-sample metric for plots: the latest ``METRIC_HISTORY`` values only,
        so a detector's memory stays flat on a stream that runs for months."""
        series = self.metrics.get(name)
        if series is None:
            series = self.metrics[name] = deque(maxlen=METRIC_HISTORY)
        series.append((time, value))


class RunTracker:
    """Turns a per-sample yes/no condition into confirmed intervals.

    An interval is reported only once the condition has held for
    ``min_duration_s`` (its start is then back-dated to when it began), and it
    ends only after the condition has been false for ``end_hold_s`` — the
    hysteresis that keeps one defect from flickering into many. A jump in time
    larger than ``end_hold_s`` between samples (a PTS gap) ends it too.
    """

    def __init__(self, min_duration_s: float, end_hold_s: float = 0.0) -> None:
        self.min_duration_s = min_duration_s
        self.end_hold_s = end_hold_s
        self.start: MediaTime | None = None
        self.last_active_end: MediaTime = 0.0
        self.confirmed = False

    def update(
        self, active: bool, start: MediaTime, end: MediaTime
    ) -> tuple[tuple[str, MediaTime], ...]:
        """Feed one sample spanning [start, end); returns the ("start"|"end", time) changes."""
        changes: tuple[tuple[str, MediaTime], ...] = ()
        if self.start is not None:
            # Over the hold: a PTS gap before this sample, or inactive for long enough.
            idle_until = start if active else end
            if idle_until - self.last_active_end > self.end_hold_s + TIMESTAMP_JITTER_S:
                changes = self._close()
        if active:
            if self.start is None:
                self.start = start
            self.last_active_end = end
            # A run's length is only known to the container's timestamp rounding.
            if not self.confirmed and end - self.start >= self.min_duration_s - TIMESTAMP_JITTER_S:
                self.confirmed = True
                changes += (("start", self.start),)
        return changes

    def flush(self) -> tuple[tuple[str, MediaTime], ...]:
        return self._close() if self.start is not None else ()

    @property
    def active(self) -> bool:
        return self.confirmed

    def _close(self) -> tuple[tuple[str, MediaTime], ...]:
        was_confirmed, end = self.confirmed, self.last_active_end
        self.start, self.confirmed = None, False
        return (("end", end),) if was_confirmed else ()


def available_detectors() -> dict[str, type[Detector[Any]]]:
    """Every registered detector class by key, loaded from the entry point group."""
    return dict(_registered())


@functools.cache
def _registered() -> dict[str, type[Detector[Any]]]:
    # Once per process: reading the installed packages' metadata takes ~5 ms, and a
    # monitor builds its detectors anew for every connection (a looping file: each loop).
    found: dict[str, type[Detector[Any]]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must not take the others down
            log.error("detector plugin %s failed to load: %s", ep.name, exc)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Detector)):
            log.error("entry point %s is not a Detector subclass", ep.name)
            continue
        found[ep.name] = cls
    return dict(sorted(found.items()))


def load_detector(key: str) -> type[Detector[Any]]:
    detectors = available_detectors()
    if key not in detectors:
        raise DetectorError(f"unknown detector {key!r}; known: {', '.join(detectors)}")
    return detectors[key]


def select(keys: Iterable[str] | None) -> dict[str, type[Detector[Any]]]:
    """The detectors named in ``keys`` (all registered ones when None)."""
    if keys is None:
        return available_detectors()
    return {k: load_detector(k) for k in keys}
