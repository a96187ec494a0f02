"""Corrupted pictures after lost or damaged data, from the decoder's own signals.

Metric: the decoder's video error reports — "concealing N DC, N AC, N MV
errors" and decode errors — which libav logs and avwatch turns into
``DecodeIssue`` samples. The damage they announce lasts until the next
keyframe refreshes the picture (MEDIA.md trap 5), so a ``corruption`` event
runs from the first report to that keyframe, or ``max_propagation_s`` after the
last report when no keyframe comes (intra-refresh streams). Details count the
reports.

Not yet: evidence from the picture itself (macroblock-aligned edges, smearing),
which also catches damage the decoder hides silently.
"""

from __future__ import annotations

from pydantic import Field

from avwatch.detectors.base import Detector, DetectorConfig
from avwatch.types import DecodeIssue, MediaTime, Severity, StreamInfo, VideoFrame


class CorruptionConfig(DetectorConfig):
    max_propagation_s: float = Field(
        5.0,
        ge=0.1,
        le=60.0,
        description="Without a keyframe, damage is taken to end this long after the last "
        "decoder report.",
    )


class CorruptionDetector(Detector[CorruptionConfig]):
    key = "corruption"
    needs = frozenset({"video"})
    emits = ("corruption",)
    Config = CorruptionConfig
    description = "Pictures damaged by lost or corrupt data (decoder concealment and errors)."

    def __init__(self, config: CorruptionConfig, info: StreamInfo) -> None:
        super().__init__(config, info)
        self.open = False
        self.last_report: MediaTime = 0.0
        self.reports = 0
        self.total_reports = 0

    def on_issue(self, issue: DecodeIssue) -> None:
        if issue.media != "video" or issue.kind not in ("concealment", "decode_error"):
            return
        self.total_reports += 1
        self.reports += 1
        self.last_report = issue.time
        if not self.open:
            self.open = True
            self.emit("corruption", "start", issue.time, Severity.ERROR)

    def on_video(self, frame: VideoFrame) -> None:
        if not self.open:
            return
        refreshed = frame.keyframe and frame.time > self.last_report
        if refreshed or frame.time - self.last_report > self.config.max_propagation_s:
            end = frame.time if refreshed else self.last_report + self.config.max_propagation_s
            self.emit("corruption", "end", end, Severity.ERROR, reports=self.reports)
            self.open, self.reports = False, 0

    def flush(self, end: MediaTime) -> None:
        if self.open:
            self.emit("corruption", "end", end, Severity.ERROR, reports=self.reports)
            self.open, self.reports = False, 0

    def summary(self) -> dict[str, int]:
        return {"decoder_reports": self.total_reports}
