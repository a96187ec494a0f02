"""The shared vocabulary: media time, stream descriptions, analysis samples, events.

Everything a detector sees or says is defined here, once. Times are media time in
seconds (``MediaTime``) with t = 0 at the first displayed video frame (the first
audio sample when there is no video); see docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = [
    "STRICT_ERROR_DETECTION",
    "Analysis",
    "AudioBlock",
    "AudioInfo",
    "DecodeIssue",
    "DefectEvent",
    "ErrorDetection",
    "Incident",
    "IssueKind",
    "MediaKind",
    "MediaTime",
    "Sample",
    "Severity",
    "StreamInfo",
    "TransportFinding",
    "VideoFrame",
    "VideoInfo",
]

MediaTime: TypeAlias = float
"""Seconds of media time."""

MediaKind: TypeAlias = Literal["video", "audio"]

LumaPlane: TypeAlias = npt.NDArray[np.uint8]
PcmBlock: TypeAlias = npt.NDArray[np.float32]

# FFmpeg's err_detect for video: strict, so that bit errors that still parse are caught
# (the corruption detector's docstring says how; EngineConfig.decoder_error_detection).
ErrorDetection: TypeAlias = Literal["default", "careful", "aggressive"]
Analysis: TypeAlias = Literal["full", "fast", "patrol"]
"""How a stream's pictures are decoded: every one (full), every one with the decoder's
deblocking skipped (fast), or keyframes only (patrol)."""
STRICT_ERROR_DETECTION: ErrorDetection = "aggressive"
Profile: TypeAlias = Literal["live", "qc"]
"""An operating point: ``live`` alarms a 24/7 operator acts on; ``qc`` file quality
control, which wants every short defect (single black frames, brief freezes and gaps)."""


class Severity(str, Enum):
    """How bad a defect is; ordered, so ``--fail-on`` can compare."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER.index(self)


_SEVERITY_ORDER = [Severity.INFO, Severity.WARNING, Severity.ERROR, Severity.CRITICAL]


@dataclass(frozen=True, slots=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    fps: float | None
    pix_fmt: str | None
    analysis_width: int
    analysis_height: int


@dataclass(frozen=True, slots=True)
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int
    layout: str
    channel_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a source carries, as far as the demuxer knows at open time."""

    source: str
    container: str
    duration_s: float | None
    video: VideoInfo | None
    audio: AudioInfo | None

    def has(self, kind: MediaKind) -> bool:
        return (self.video if kind == "video" else self.audio) is not None


@dataclass(slots=True)
class VideoFrame:
    """One decoded picture, made small once and shared by every video detector.

    ``luma`` is a full-range (0-255) grey plane at the analysis size, scaled by
    libswscale (``analysis_interpolation``: fast bilinear unless configured).
    """

    time: MediaTime
    duration: float
    luma: LumaPlane
    keyframe: bool
    captions: bytes | None = None
    """The picture's ATSC A/53 caption data (cc_data triplets: CEA-608 and 708), if any."""
    sampled: bool = False
    """A keyframe decoded alone (patrol): it stands for the pictures until the next one,
    and ``duration`` is that span as far as the keyframe spacing so far tells."""
    between_share: float | None = None
    """Patrol: the pictures since the previous keyframe, not decoded, by their mean coded
    size as a share of that keyframe's. A picture that repeats codes to next to nothing."""
    thumbnail: bytes | None = None
    """A small colour JPEG of the picture, when the reader was asked for one now
    (``MediaReader.thumbnail_every_s``)."""


@dataclass(slots=True)
class AudioBlock:
    """Decoded audio placed by its PTS: ``samples`` is float32, (channels, n)."""

    time: MediaTime
    samples: PcmBlock
    sample_rate: int

    @property
    def end(self) -> MediaTime:
        return self.time + int(self.samples.shape[1]) / self.sample_rate


IssueKind: TypeAlias = Literal[
    "decode_error",
    "concealment",
    "discontinuity",
    "pts_wrap",
    "demux_error",
    "corrupt_packet",  # the demuxer found the packet damaged (a continuity error inside it)
    "frame_lost",  # the decoder took a picture's packet and never gave the picture out
    "no_decoder",  # a stream whose codec this FFmpeg cannot decode: left out
    "stream_added",  # a stream appeared mid-file (damage, or a PMT change): not read
]


@dataclass(frozen=True, slots=True)
class DecodeIssue:
    """Decoder trouble, passed on as data rather than raised."""

    time: MediaTime
    kind: IssueKind
    media: MediaKind | None
    message: str


Sample: TypeAlias = VideoFrame | AudioBlock | DecodeIssue


@dataclass(frozen=True, slots=True)
class TransportFinding:
    """A TR 101 290 finding placed on the media timeline, for detectors that take them
    (``Detector.on_transport``): ``type`` is its report event type (``ts_cc_error``...)."""

    type: str
    time: MediaTime
    pid: int | None
    packet: int
    """Index of the packet in the stream, to find it in a capture."""
    details: dict[str, Any] = field(default_factory=dict)
    """What the analyser read (an SCTE-35 cue's fields: ``splice_at`` in media time)."""


@dataclass(frozen=True, slots=True)
class DefectEvent:
    """A detector's typed statement that a defect started or ended.

    ``key`` separates concurrent defects of one type (e.g. one silent channel
    each); ``details`` carry measurements, merged from start to end.
    """

    type: str
    phase: Literal["start", "end"]
    time: MediaTime
    detector: str
    severity: Severity
    key: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Incident:
    """A defect interval: the report's ``events`` entries, and the service's incidents."""

    type: str
    start: MediaTime
    end: MediaTime | None
    severity: Severity
    detector: str
    key: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    id: str = ""  # given by the service when the incident first opens

    def to_report(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "start": round(self.start, 4),
            "end": None if self.end is None else round(self.end, 4),
            "severity": self.severity.value,
            "detector": self.detector,
            "details": self.details,
        }
