"""Captions: is the caption data a stream carried still there?

Caption data rides in the pictures (ATSC A/53 cc_data in H.264/HEVC SEI or MPEG-2
user data, read from the coded picture by decode/captions.py): triplets of
``marker|valid|type`` and two bytes, type 0-1 for CEA-608 fields 1 and 2, 2-3 for
CEA-708 (DTVCC). A picture carries captions when one of its triplets is valid.

``captions_missing`` opens when a stream that carried captions has carried none
for ``min_duration_s`` (dated from the last picture that did), or, with
``expected`` (``expect: {captions: true}``), when none came in the first
``min_duration_s`` (or in the whole of a shorter file); it closes when they come
back.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from avwatch.detectors.base import Detector, DetectorConfig
from avwatch.types import MediaTime, Severity, StreamInfo, VideoFrame

__all__ = ["CaptionsConfig", "CaptionsDetector"]

CHANNELS = {0: "608 field 1", 1: "608 field 2", 2: "708", 3: "708"}


class CaptionsConfig(DetectorConfig):
    min_duration_s: float = Field(
        10.0, gt=0, le=3600, description="Seconds without caption data before it is missing."
    )
    expected: bool = Field(
        False, description="The stream must carry captions from the start (expect.captions)."
    )


class CaptionsDetector(Detector[CaptionsConfig]):
    key = "captions"
    needs = frozenset({"video"})
    emits = ("captions_missing",)
    Config = CaptionsConfig
    description = "Caption data (CEA-608/708 in the pictures) that stops, or never comes."
    expect_options: ClassVar[dict[str, str]] = {"captions": "expected"}

    def __init__(self, config: CaptionsConfig, info: StreamInfo) -> None:
        super().__init__(config, info)
        self.first_seen: MediaTime | None = None
        self.last_seen: MediaTime | None = None  # end of the last picture with captions
        self.first_picture: MediaTime | None = None
        self.pictures = 0
        self.with_captions = 0
        self.channels: set[str] = set()
        self.missing_since: MediaTime | None = None

    def on_video(self, frame: VideoFrame) -> None:
        if self.first_picture is None:
            self.first_picture = frame.time
        self.pictures += 1
        if frame.captions and self._carries(frame.captions):
            self.with_captions += 1
            if self.first_seen is None:
                self.first_seen = frame.time
            if self.missing_since is not None:
                self.emit("captions_missing", "end", frame.time, Severity.ERROR)
                self.missing_since = None
            self.last_seen = frame.time + frame.duration
            return
        since = self.last_seen
        if since is None and self.config.expected:
            since = self.first_picture
        if self.missing_since is not None or since is None:
            return
        if frame.time + frame.duration - since >= self.config.min_duration_s:
            self.missing_since = since
            never_seen = self.last_seen is None
            self.emit("captions_missing", "start", since, Severity.ERROR, never_seen=never_seen)

    def _carries(self, cc_data: bytes) -> bool:
        found = False
        for i in range(0, len(cc_data) - 2, 3):
            marker = cc_data[i]
            if marker & 0x04:  # cc_valid
                self.channels.add(CHANNELS[marker & 0x03])
                found = True
        return found

    def flush(self, end: MediaTime) -> None:
        never = self.config.expected and self.first_seen is None and self.missing_since is None
        if never and self.first_picture is not None:  # a file shorter than the minimum
            self.missing_since = self.first_picture
            self.emit(
                "captions_missing", "start", self.first_picture, Severity.ERROR, never_seen=True
            )
        if self.missing_since is not None:
            self.emit("captions_missing", "end", end, Severity.ERROR)
            self.missing_since = None

    def summary(self) -> dict[str, Any]:
        if self.first_seen is None and not self.config.expected:
            return {}
        return {
            "present": self.first_seen is not None,
            "channels": sorted(self.channels),
            "first_seen": None if self.first_seen is None else round(self.first_seen, 3),
            "last_seen": None if self.last_seen is None else round(self.last_seen, 3),
            "share": round(self.with_captions / self.pictures, 3) if self.pictures else 0.0,
        }

    @classmethod
    def report_lines(cls, summary: dict[str, Any]) -> list[str]:
        if not summary["present"]:
            return ["captions: none (expected)"]
        return [
            f"captions: {', '.join(summary['channels'])}, in {summary['share']:.0%} of pictures, "
            f"{summary['first_seen']}-{summary['last_seen']} s"
        ]
