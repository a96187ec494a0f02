"""What crosses a process boundary in the service, typed so mypy can follow it.

The pool sends a worker commands (``StartStream``, ``StopStream``, ``ExitWorker``)
over a queue; a worker's monitors send the pool ``IncidentUpdate``,
``Evidence`` and ``StreamStatus`` over the worker's pipe, and the worker itself a
``Heartbeat`` every second. All are frozen
dataclasses, pickled on the way; frames never cross.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, TypeAlias

from avwatch.types import MediaTime

__all__ = [
    "Evidence",
    "ExitWorker",
    "Heartbeat",
    "IncidentUpdate",
    "LevelsReport",
    "StartStream",
    "StatusReport",
    "StopStream",
    "StreamStatus",
    "WorkerCommand",
    "WorkerMessage",
]

# Per signal name: [wall time, min, max] per bucket of a few tenths of a second.
Signals: TypeAlias = dict[str, list[list[float]]]


@dataclass(frozen=True, slots=True)
class IncidentUpdate:
    """An incident as it opens, changes or closes: the report's event fields, the stream
    it belongs to, and wall-clock UTC seconds for its start and end."""

    id: str
    stream: str
    type: str
    severity: str
    detector: str
    start: MediaTime
    end: MediaTime | None
    started_at: float
    ended_at: float | None
    open: bool
    details: dict[str, Any] = field(default_factory=dict)
    key: str = ""


@dataclass(frozen=True, slots=True)
class Evidence:
    """A file that shows an incident: a picture before and during it, or a TS clip."""

    stream: str
    incident: str
    name: str
    media_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """How one monitor is doing, every couple of seconds."""

    state: str
    fps: float
    lag_s: float
    bytes_read: int
    dropped_samples: int
    reconnects: int
    last_data_at: float | None
    last_error: str | None
    at: float
    ts: dict[str, Any] | None = None
    """TR 101 290 so far in this connection: packets, errors by type."""
    detector_seconds: dict[str, float] | None = None
    media: dict[str, str | None] | None = None
    """The codecs of the stream being decoded."""
    analysis: str = "full"
    """The stream's tier: full, fast or patrol (analysis/escalation.py)."""
    escalation: dict[str, Any] | None = None
    """A patrolled stream's: whether it is analysed in full now and why, escalations,
    rotation slices and refusals so far."""

    def as_dict(self) -> dict[str, Any]:
        """The API's and the dashboard's view: what a stream has not told yet is absent."""
        return {k: v for k, v in asdict(self).items() if v is not None or k in _ALWAYS}


_ALWAYS = frozenset({"last_data_at", "last_error"})


@dataclass(frozen=True, slots=True)
class StatusReport:
    stream: str
    status: StreamStatus
    signals: Signals = field(default_factory=dict)
    thumbnail: bytes | None = None
    """The latest picture: a colour JPEG, or the grey analysis picture as PNG when no
    colour one could be made."""
    part: int = 0
    """Which part of a split stream reports (service/parts.py); the first part's status
    is the stream's."""


@dataclass(frozen=True, slots=True)
class LevelsReport:
    """A stream's audio meters, several times a second: each channel's peak and RMS
    since the last report (meters.Levels.to_api) and the short-term loudness."""

    stream: str
    levels: dict[str, Any]


WorkerMessage: TypeAlias = IncidentUpdate | Evidence | StatusReport | LevelsReport


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A worker's main loop is turning: sent every second, consumed by the pool."""

    worker: int


@dataclass(frozen=True, slots=True)
class StartStream:
    """Start (or restart) a stream's monitor; the models travel as plain data."""

    spec: dict[str, Any]
    engine: dict[str, Any]
    key: str = ""
    """The monitor's key on the worker: the stream id, or ``id#N`` for part N of a split
    stream (service/parts.py); empty: the stream id."""

    @property
    def monitor_key(self) -> str:
        return self.key or str(self.spec["id"])


@dataclass(frozen=True, slots=True)
class StopStream:
    stream: str
    """The monitor's key (StartStream.key)."""


@dataclass(frozen=True, slots=True)
class ExitWorker:
    pass


WorkerCommand: TypeAlias = StartStream | StopStream | ExitWorker
