"""Corrupted pictures after lost or damaged data, from the decoder's own signals.

Metric: the decoder's video error reports — "concealing N DC, N AC, N MV
errors" and decode errors — which libav logs and avwatch turns into
``DecodeIssue`` samples. The decoder checks strictly by default
(``decoder_error_detection``: FFmpeg's err_detect "aggressive"): a slice that
decodes but leaves data unread is rejected and concealed. That is how bit
errors that still parse as valid syntax show; with FFmpeg's own checks the
corpus's ``small_h264`` bit errors at 11 s went unreported.

The damage the reports announce lasts until the next keyframe refreshes the
picture (docs/media.md trap 5), so a ``corruption`` event
runs from the first report to that keyframe, or ``max_propagation_s`` after the
last report when no keyframe comes (intra-refresh streams). Details count the
reports and say which signals told of the damage (``signals``), and, where the
TS analyser saw the bytes, the transport findings behind it (``transport``:
by type, how many, on which PIDs, the first packet numbers; see
``transport/causes.py``).

The decoder's silent losses count too: a picture whose packet went in and
never came out (``frame_lost``), and a packet the demuxer found damaged in
transport (``corrupt_packet``) when pictures then go missing within
``confirm_within_s`` — a continuity jump that lost no data damages nothing.

The damaged area: the keyframe that ends the damage repairs it, so the picture
changes there far more than it moved the frame before (a cell of 8x8 analysis
pixels that changed by over ``refresh_min_change_levels`` grey levels and over
``refresh_ratio`` times its change one frame earlier; both set on the
corpus's damaged files against the damaged share of 16x16 blocks measured by
decoding). The share of such cells
is ``damaged_area`` in the end details — the part of the picture that was
damaged just before the repair. Damage that ends without a keyframe has no
such estimate.

Not evidence on its own: damage the decoder hides from every signal, even with
strict checks, is not found. Reference-free picture cues
(macroblock-aligned edges, refresh spikes) were measured on the corpus and did
not separate such damage from ordinary content changes (blinks, cuts, a graphic
that jumps) well enough to raise an alarm on: the share of cells a keyframe
repairs (the measure above) after damage that FFmpeg's own checks miss is
smaller than on a fair number of clean keyframes (pulldown, frame gaps, a
low-bitrate stream's keyframe pumping, cuts).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import Field

from avwatch.detectors.base import Detector, DetectorConfig
from avwatch.transport.causes import TransportCauses
from avwatch.types import (
    DecodeIssue,
    LumaPlane,
    MediaTime,
    Severity,
    StreamInfo,
    TransportFinding,
    VideoFrame,
)

CELL = 8  # analysis pixels a side: about a macroblock at SD, two at 1080p


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
    refresh_min_change_levels: float = Field(
        4.0,
        ge=0.0,
        le=255.0,
        description="Grey levels a cell must change at the repairing keyframe to count as "
        "damaged (damaged_area).",
    )
    refresh_ratio: float = Field(
        1.5,
        ge=1.0,
        le=100.0,
        description="...and times its change the frame before (ordinary motion goes on).",
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
        self.told_by: dict[str, int] = {}  # what told of the open damage, by kind
        self.causes = TransportCauses()
        self.damage_start: MediaTime = 0.0
        self.suspect_at: MediaTime | None = None  # a damaged packet, not yet shown to matter
        self.next_time: MediaTime | None = None
        self.recent: list[LumaPlane] = []  # the last two pictures (references, not copies)

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
        self.told_by[why] = self.told_by.get(why, 0) + 1
        self.last_report = max(self.last_report, at)
        if not self.open:
            self.open = True
            start = at
            suspect = self.suspect_at
            if suspect is not None and at - suspect <= self.config.confirm_within_s:
                start = min(at, suspect)  # a damaged packet just before: the damage began there
                self.told_by["corrupt_packet"] = 1
            self.damage_start = start
            self.emit("corruption", "start", start, Severity.ERROR, **self._transport(start))
        self.suspect_at = None

    def on_transport(self, finding: TransportFinding) -> None:
        self.causes.add(finding.type, finding.time, finding.pid, finding.packet)

    def _transport(self, until: MediaTime) -> dict[str, Any]:
        """The ``transport`` detail: findings from just before the damage to ``until``."""
        found = self.causes.between(self.damage_start, until)
        return {"transport": found} if found else {}

    def on_video(self, frame: VideoFrame) -> None:
        expected = self.next_time
        self.next_time = frame.time + frame.duration
        if self.suspect_at is not None and frame.sampled:
            # Patrol: the damaged packet's pictures were not decoded to show it; the
            # transport's word is all there is, and this keyframe ends it.
            self._damage(self.suspect_at, "corrupt_packet")
        if self.suspect_at is not None:
            if expected is not None and frame.time - expected > frame.duration / 2:
                self._damage(expected, "pictures_missing")  # after a damaged packet
            elif frame.time - self.suspect_at > self.config.confirm_within_s:
                self.suspect_at = None  # the damaged packet cost no picture
        recent, self.recent = self.recent, [*self.recent[-1:], frame.luma]
        if not self.open:
            return
        refreshed = frame.keyframe and frame.time > self.last_report
        if refreshed:
            # Patrolled keyframes are a GOP apart: their change is not a repair's.
            area = None if frame.sampled else self._repaired_share(frame.luma, recent)
            self._end(frame.time, area)
        elif frame.time - self.last_report > self.config.max_propagation_s:
            self._end(self.last_report + self.config.max_propagation_s)

    def _repaired_share(self, key: LumaPlane, before: list[LumaPlane]) -> float | None:
        """Share of the picture the keyframe changed far beyond the motion before it."""
        if len(before) < 2 or before[0].shape != key.shape:
            return None
        repair = _cell_change(key, before[1])
        motion = _cell_change(before[1], before[0])
        c = self.config
        damaged = repair > c.refresh_min_change_levels + c.refresh_ratio * motion
        return round(float(damaged.mean()), 3) if damaged.size else None

    def flush(self, end: MediaTime) -> None:
        if self.open:
            self._end(end)

    def _end(self, at: MediaTime, damaged_area: float | None = None) -> None:
        # Which signals told of the damage: the decoder's, or transport's.
        area: dict[str, Any] = {} if damaged_area is None else {"damaged_area": damaged_area}
        self.emit(
            "corruption",
            "end",
            at,
            Severity.ERROR,
            reports=self.reports,
            signals=self.told_by,
            **area,
            **self._transport(at),
        )
        self.open, self.reports, self.told_by = False, 0, {}

    def summary(self) -> dict[str, int]:
        return {"decoder_reports": self.total_reports}


def _cell_change(a: LumaPlane, b: LumaPlane) -> npt.NDArray[np.float64]:
    """Mean absolute difference of two pictures per CELL x CELL cell."""
    h, w = a.shape[0] // CELL * CELL, a.shape[1] // CELL * CELL
    diff = np.abs(a[:h, :w].astype(np.int16) - b[:h, :w].astype(np.int16))
    change: npt.NDArray[np.float64] = diff.reshape(h // CELL, CELL, w // CELL, CELL).mean(
        axis=(1, 3)
    )
    return change
