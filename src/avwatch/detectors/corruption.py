"""Corrupted pictures after lost or damaged data, from the decoder's own signals.

Metric: the decoder's video error reports — "concealing N DC, N AC, N MV
errors" and decode errors — which libav logs and avwatch turns into
``DecodeIssue`` samples. The damage they announce lasts until the next
keyframe refreshes the picture (MEDIA.md trap 5), so a ``corruption`` event
runs from the first report to that keyframe, or ``max_propagation_s`` after the
last report when no keyframe comes (intra-refresh streams). Details count the
reports and say which signals told of the damage (``signals``).

The decoder's silent losses count too: a picture whose packet went in and
never came out (``frame_lost``), and a packet the demuxer found damaged in
transport (``corrupt_packet``) when pictures then go missing within
``confirm_within_s`` — a continuity jump that lost no data damages nothing.

Not yet: evidence from the picture itself (macroblock-aligned edges, smearing),
which also catches damage the decoder hides from every signal.
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
    confirm_within_s: float = Field(
        1.0,
        ge=0.0,
        le=10.0,
        description="A packet damaged in transport is corruption when pictures go missing "
        "within this long after it.",
    )


class CorruptionDetector(Detector[CorruptionConfig]):
    key = "corruption"
    needs = frozenset({"video"})
    emits = ("corruption",)
    Config = CorruptionConfig
    description = "Pictures damaged by lost or corrupt data (decoder concealment, errors, losses)."

    def __init__(self, config: CorruptionConfig, info: StreamInfo) -> None:
        super().__init__(config, info)
        self.open = False
        self.last_report: MediaTime = 0.0
        self.reports = 0
        self.total_reports = 0
        self.signals: dict[str, int] = {}  # what told of the open damage, by kind
        self.suspect_at: MediaTime | None = None  # a damaged packet, not yet shown to matter
        self.next_time: MediaTime | None = None

    def on_issue(self, issue: DecodeIssue) -> None:
        if issue.media != "video":
            return
        if issue.kind == "corrupt_packet":
            if self.suspect_at is None:
                self.suspect_at = issue.time
        elif issue.kind in ("concealment", "decode_error", "frame_lost"):
            self._damage(issue.time, issue.kind)

    def _damage(self, at: MediaTime, why: str) -> None:
        self.total_reports += 1
        self.reports += 1
        self.signals[why] = self.signals.get(why, 0) + 1
        self.last_report = max(self.last_report, at)
        if not self.open:
            self.open = True
            start = at
            suspect = self.suspect_at
            if suspect is not None and at - suspect <= self.config.confirm_within_s:
                start = min(at, suspect)  # a damaged packet just before: the damage began there
                self.signals["corrupt_packet"] = 1
            self.emit("corruption", "start", start, Severity.ERROR)
        self.suspect_at = None

    def on_video(self, frame: VideoFrame) -> None:
        expected = self.next_time
        self.next_time = frame.time + frame.duration
        if self.suspect_at is not None:
            if expected is not None and frame.time - expected > frame.duration / 2:
                self._damage(expected, "pictures_missing")  # after a damaged packet
            elif frame.time - self.suspect_at > self.config.confirm_within_s:
                self.suspect_at = None  # the damaged packet cost no picture
        if not self.open:
            return
        refreshed = frame.keyframe and frame.time > self.last_report
        if refreshed or frame.time - self.last_report > self.config.max_propagation_s:
            end = frame.time if refreshed else self.last_report + self.config.max_propagation_s
            self._end(end)

    def flush(self, end: MediaTime) -> None:
        if self.open:
            self._end(end)

    def _end(self, at: MediaTime) -> None:
        # Which signals told of the damage: the decoder's, or transport's.
        self.emit(
            "corruption", "end", at, Severity.ERROR, reports=self.reports, signals=self.signals
        )
        self.open, self.reports, self.signals = False, 0, {}

    def summary(self) -> dict[str, int]:
        return {"decoder_reports": self.total_reports}
