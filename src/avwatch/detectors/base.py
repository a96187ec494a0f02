"""The detector contract, the run tracker every threshold detector shares, and the registry.

A detector is a small, pure, single-stream state machine: it is fed analysis
samples in PTS order, appends typed start/end events to ``self.events`` (the
analyzer drains them), records per-sample ``signals`` for plots, and ``flush()``
closes whatever is open. No I/O, threads or wall clock inside.

Everything about a detector lives in its module: which inputs it ``accepts``,
the transport findings it takes (``on_transport``), the ``plots`` its signals
are drawn in (the dashboard reads them), its ``summary`` for the report and the
``report_lines`` that summary prints as text. Words: ``signals`` are per-sample
series, ``summary`` is the report's whole-stream figures, and ``metrics`` are
Prometheus's alone.

Detectors are found through the ``avwatch.detectors`` entry point group; the
built-ins are registered there exactly like an outside plugin.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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
    TransportFinding,
    VideoFrame,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Detector",
    "DetectorConfig",
    "Plot",
    "RunTracker",
    "available_detectors",
    "load_detector",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "avwatch.detectors"
SIGNAL_HISTORY = 36_000  # ten minutes at 60 samples a second
# Containers with a millisecond time base (Matroska, FLV) round every PTS: audio
# frames then sit up to 1 ms apart or overlap. Gaps this small are not gaps, and a
# run this much shorter than a minimum duration meets it.
TIMESTAMP_JITTER_S = 0.002
STEP_MARGIN_S = 0.001  # below a step: what sets a whole step short apart


class DetectorConfig(BaseModel):
    """Base of every detector's options: unknown keys are an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ConfigT = TypeVar("ConfigT", bound=DetectorConfig)


@dataclass(frozen=True, slots=True)
class Plot:
    """One plot on a stream's page: the signals drawn in it, and its scale."""

    title: str
    signals: tuple[str, ...]
    min: float | None = None
    max: float | None = None
    target_setting: str | None = None
    """A setting of the same detector drawn as a horizontal line (``target_lufs``)."""


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
    plots: ClassVar[tuple[Plot, ...]] = ()
    """Where the signals it records are drawn; a signal in no plot is refused."""
    expect_options: ClassVar[dict[str, str]] = {}
    """Fields of ``expect:`` this detector judges, and the option each one sets."""
    profiles: ClassVar[dict[str, dict[str, Any]]] = {}
    """Per operating point (``types.Profile``), the options that differ from the
    defaults, which are the live ones. A user's own options win over these."""

    def __init__(self, config: ConfigT, info: StreamInfo) -> None:
        self.config = config
        self.info = info
        self.events: list[DefectEvent] = []
        self.signals: dict[str, deque[tuple[MediaTime, float]]] = {}
        self.recorder: Callable[[str, MediaTime, float], None] | None = None
        """Also told every recorded value: a check that keeps whole-file series."""

    @classmethod
    def accepts(cls, info: StreamInfo) -> str | None:
        """Why this detector cannot judge the stream (None: it can). By default a
        stream must carry every media kind in ``needs``, and audio its sample rate and
        channels (a stream cut short may name audio it never carried); a detector may
        decline more."""
        missing = [k for k in sorted(cls.needs) if not info.has(k)]
        if missing:
            return f"no {' or '.join(missing)} in the input"
        audio = info.audio
        if (
            "audio" in cls.needs
            and audio is not None
            and not (audio.sample_rate > 0 < audio.channels)
        ):
            return "the audio's sample rate or channels are unknown (no audio was read)"
        return None

    @classmethod
    def takes_transport(cls) -> bool:
        return cls.on_transport is not Detector.on_transport

    @classmethod
    def report_lines(cls, summary: dict[str, Any]) -> list[str]:
        """Lines of text ``avwatch check`` prints from this detector's ``summary``."""
        return []

    def on_video(self, frame: VideoFrame) -> None:
        """Called for each video frame, in presentation order."""

    def on_audio(self, block: AudioBlock) -> None:
        """Called for each audio block, in PTS order."""

    def on_issue(self, issue: DecodeIssue) -> None:
        """Called for decoder trouble (errors, discontinuities)."""

    def on_transport(self, finding: TransportFinding) -> None:
        """Called for each TR 101 290 finding, before the pictures decoded from the
        bytes after it; only for detectors that override it."""

    def flush(self, end: MediaTime) -> None:
        """End of stream (or reconnect): close open intervals at ``end`` at the latest."""

    def suspects(self) -> bool:
        """Whether a defect may be beginning that is not yet confirmed (a run shorter than
        its minimum): a patrolled stream is then analysed in full to judge it."""
        return False

    def summary(self) -> dict[str, Any]:
        """Whole-stream figures, under the detector's key in the report's ``metrics``."""
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
        """Keep a per-sample signal for plots: the latest ``SIGNAL_HISTORY`` values only,
        so a detector's memory stays flat on a stream that runs for months."""
        series = self.signals.get(name)
        if series is None:
            if not any(name in plot.signals for plot in self.plots):
                raise DetectorError(f"{self.key}: signal {name!r} is in none of its plots")
            series = self.signals[name] = deque(maxlen=SIGNAL_HISTORY)
        series.append((time, value))
        if self.recorder is not None:
            self.recorder(name, time, value)


class RunTracker:
    """Turns a per-sample yes/no condition into confirmed intervals.

    An interval is reported only once the condition has held for
    ``min_duration_s`` (its start is then back-dated to when it began), and it
    ends only after the condition has been false for ``end_hold_s`` — the
    hysteresis that keeps one defect from flickering into many. A jump in time
    larger than ``end_hold_s`` between samples (a PTS gap) ends it too.

    ``step_s`` is how finely a run is measured when it is counted in whole samples
    (a picture's duration): a defect as long as ``min_duration_s`` can span one
    sample fewer than it lasts (a 2.00 s freeze at 29.97 fps holds 59 or 60 pictures,
    59 measuring 1.969 s), and is reported all the same.
    """

    def __init__(self, min_duration_s: float, end_hold_s: float = 0.0) -> None:
        self.min_duration_s = min_duration_s
        self.end_hold_s = end_hold_s
        self.step_s = 0.0
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
            if not self.confirmed and end - self.start >= self.min_duration_s - self._slack_s():
                self.confirmed = True
                changes += (("start", self.start),)
        return changes

    def flush(self) -> tuple[tuple[str, MediaTime], ...]:
        return self._close() if self.start is not None else ()

    def _slack_s(self) -> float:
        """How much shorter than ``min_duration_s`` a run may measure and count: the
        container's timestamp rounding, or nearly one step. Not a whole step: at 25 fps
        a 2 s defect always holds 50 pictures, and 49 are a shorter one."""
        return max(TIMESTAMP_JITTER_S, self.step_s - STEP_MARGIN_S)

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
    # Once per process: reading the installed packages' metadata is slow, and a
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
