"""Shared logic of video_loss and audio_loss: one kind of data stops while time goes on."""

from __future__ import annotations

from pydantic import Field

from avwatch.detectors.base import Detector, DetectorConfig
from avwatch.types import AudioBlock, MediaKind, MediaTime, Severity, StreamInfo, VideoFrame


class LossConfig(DetectorConfig):
    min_gap_s: float = Field(
        1.0, ge=0.02, le=60.0, description="Missing data for this long is a loss."
    )
    skew_tolerance_s: float = Field(
        2.0,
        ge=0.0,
        le=60.0,
        description="How far the other kind may run ahead before missing data counts as "
        "lost: muxers interleave audio and video loosely, and at the start and end of a "
        "stream one kind may lead or trail (encoder priming).",
    )


class LossDetector(Detector[LossConfig]):
    """Watches one media kind (``watched``) against the stream's clock.

    A loss is a PTS gap in the watched kind, or the watched kind falling behind
    the other one — data that stops while the programme goes on. It is dated
    from where the watched data ended to where it resumed (or to the end of
    the stream).
    """

    watched: MediaKind
    reads = frozenset({"video", "audio"})

    def __init__(self, config: LossConfig, info: StreamInfo) -> None:
        super().__init__(config, info)
        self.type = f"{self.watched}_loss"
        # The watched data is due from t = 0; a late start is a loss too.
        self.watched_end: MediaTime = 0.0
        self.started = False
        self.open = False

    def _gap_threshold(self) -> float:
        """For a PTS gap in the watched data itself (exact), or its late first sample."""
        if self.started:
            return self.config.min_gap_s
        return max(self.config.min_gap_s, self.config.skew_tolerance_s)

    def _lead_threshold(self) -> float:
        """For the other kind running ahead (blurred by interleaving)."""
        return max(self.config.min_gap_s, self.config.skew_tolerance_s)

    def _watched(self, start: MediaTime, end: MediaTime) -> None:
        gap = start - self.watched_end
        if self.open and gap < self._gap_threshold():
            # Opened because the other kind ran ahead, but this data was only late
            # (a decoder holds frames until the next packet): the loss starts later.
            self.watched_end = max(self.watched_end, end)
            self.emit(self.type, "start", self.watched_end, Severity.CRITICAL)
            return
        if not self.open and gap >= self._gap_threshold():
            self.emit(self.type, "start", self.watched_end, Severity.CRITICAL)
            self.open = True
        if self.open:
            self.emit(self.type, "end", start, Severity.CRITICAL)
            self.open = False
        self.watched_end = max(self.watched_end, end)
        self.started = True

    def _other(self, time: MediaTime) -> None:
        if not self.open and time - self.watched_end >= self._lead_threshold():
            self.emit(self.type, "start", self.watched_end, Severity.CRITICAL)
            self.open = True

    def on_video(self, frame: VideoFrame) -> None:
        if self.watched == "video":
            self._watched(frame.time, frame.time + frame.duration)
        else:
            self._other(frame.time)

    def on_audio(self, block: AudioBlock) -> None:
        if self.watched == "audio":
            self._watched(block.time, block.end)
        else:
            self._other(block.time)

    def flush(self, end: MediaTime) -> None:
        self._other(end)
        if self.open:
            self.emit(self.type, "end", end, Severity.CRITICAL)
            self.open = False
