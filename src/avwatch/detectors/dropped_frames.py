"""Dropped frames: holes in the video timeline.

Metric: the gap between consecutive video PTS against the nominal frame
duration. A gap longer than ``gap_tolerance_ratio`` frames means frames are
missing; the event spans the missing frames and carries their ``count``.
Gaps of ``max_gap_s`` or longer are the video_loss detector's business.
"""

from __future__ import annotations

from pydantic import Field

from avwatch.detectors.base import Detector, DetectorConfig
from avwatch.types import DecodeIssue, MediaTime, Severity, StreamInfo, VideoFrame


class DroppedFramesConfig(DetectorConfig):
    gap_tolerance_ratio: float = Field(
        1.5, ge=1.1, le=10.0, description="A PTS step over this many frame durations is a drop."
    )
    max_gap_s: float = Field(
        1.0, ge=0.1, le=60.0, description="Gaps this long are video_loss, not dropped frames."
    )


class DroppedFramesDetector(Detector[DroppedFramesConfig]):
    key = "dropped_frames"
    needs = frozenset({"video"})
    emits = ("dropped_frames",)
    Config = DroppedFramesConfig
    description = "Missing video frames (PTS gaps), with the count."

    def __init__(self, config: DroppedFramesConfig, info: StreamInfo) -> None:
        super().__init__(config, info)
        self.expected: MediaTime | None = None
        self.total = 0

    def on_video(self, frame: VideoFrame) -> None:
        if frame.sampled:  # patrol: the pictures between keyframes are not decoded
            self.expected = None
            return
        expected, self.expected = self.expected, frame.time + frame.duration
        if expected is None:
            return
        gap = frame.time - expected
        if gap > (self.config.gap_tolerance_ratio - 1) * frame.duration and (
            gap < self.config.max_gap_s
        ):
            count = round(gap / frame.duration)
            self.total += count
            self.emit("dropped_frames", "start", expected, Severity.WARNING, count=count)
            self.emit("dropped_frames", "end", frame.time, Severity.WARNING, count=count)

    def on_issue(self, issue: DecodeIssue) -> None:
        # A timeline break (stream discontinuity, samples the monitor itself had to
        # skip) is not a hole in the stream: start again from the next frame.
        if issue.kind == "discontinuity" and issue.media in ("video", None):
            self.expected = None

    def flush(self, end: MediaTime) -> None:
        self.expected = None

    def summary(self) -> dict[str, int]:
        return {"dropped_frames": self.total}
