"""SCTE-35 cues: every cue logged on the media timeline, and the ad breaks they
announce checked.

The transport analyser reads the splice_info_sections on the PMT's SCTE-35 PIDs
(transport/scte35.py) and hands each one on as a finding: ``scte35_cue`` with
its fields, or ``scte35_crc_error``. This detector then reports:

- ``scte35_cue`` (info): each cue, where it arrived, with what it says;
- ``ad_break_overrun``: a break whose cue-in is not there by its end (splice time
  plus break duration) plus ``overrun_tolerance_s``, from its due end until the
  cue-in takes effect. A break that returns by itself (``break_auto_return``) or
  has no duration cannot overrun;
- ``scte35_unmatched_cue_in``: a cue-in with no break open;
- ``scte35_late_cue``: a cue whose splice time had already passed when it came;
- ``scte35_crc_error``: a section whose CRC fails (the cue is lost).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from avwatch.detectors.base import Detector, DetectorConfig
from avwatch.types import AudioBlock, MediaTime, Severity, TransportFinding, VideoFrame

__all__ = ["Scte35Config", "Scte35Detector"]

MAX_OPEN_BREAKS = 16  # a stream of cue-outs without cue-ins must not grow without end


class Scte35Config(DetectorConfig):
    overrun_tolerance_s: float = Field(
        1.0, ge=0, le=60, description="A cue-in this late after a break's end is an overrun."
    )
    late_tolerance_s: float = Field(
        0.0,
        ge=0,
        le=10,
        description="A cue whose splice time passed this long before it came is late.",
    )


@dataclass
class _Break:
    event_id: int | None
    starts: MediaTime
    due_end: MediaTime | None  # None: no duration, or it returns by itself
    returns_at: MediaTime | None = None  # when its cue-in takes effect
    auto_return_by: MediaTime | None = None  # a break that returns by itself: when
    overrunning: bool = False


class Scte35Detector(Detector[Scte35Config]):
    key = "scte35"
    needs = frozenset()
    reads = frozenset({"video", "audio"})  # the clock that shows a break overrunning
    emits = (
        "scte35_cue",
        "ad_break_overrun",
        "scte35_unmatched_cue_in",
        "scte35_late_cue",
        "scte35_crc_error",
    )
    Config = Scte35Config
    description = "SCTE-35 cues logged; ad breaks whose cue-in is late or missing."
    CUE_FIELDS: ClassVar[tuple[str, ...]] = (
        "command",
        "event_id",
        "out",
        "duration_s",
        "auto_return",
        "segmentation",
    )

    def __init__(self, config: Scte35Config, info: Any) -> None:
        super().__init__(config, info)
        self.open: list[_Break] = []
        self.cues = 0
        self.crc_errors = 0
        self.breaks = 0
        self.overruns = 0

    def on_transport(self, finding: TransportFinding) -> None:
        self._tick(finding.time)
        key = "" if finding.pid is None else f"{finding.pid:#06x}"
        if finding.type == "scte35_crc_error":
            self.crc_errors += 1
            self._instant("scte35_crc_error", finding.time, Severity.WARNING, key, pid=finding.pid)
        elif finding.type == "scte35_cue":
            self._cue(finding, key)

    def on_video(self, frame: VideoFrame) -> None:
        if self.open:
            self._tick(frame.time)

    def on_audio(self, block: AudioBlock) -> None:
        if self.open:
            self._tick(block.time)

    def flush(self, end: MediaTime) -> None:
        for open_break in self.open:
            if open_break.overrunning:
                self.emit("ad_break_overrun", "end", end, Severity.ERROR, _key(open_break))
        self.open = []

    def summary(self) -> dict[str, Any]:
        if not (self.cues or self.crc_errors):
            return {}
        return {
            "cues": self.cues,
            "breaks": self.breaks,
            "overruns": self.overruns,
            "crc_errors": self.crc_errors,
        }

    @classmethod
    def report_lines(cls, summary: dict[str, Any]) -> list[str]:
        return [
            f"SCTE-35: {summary['cues']} cues, {summary['breaks']} breaks, "
            f"{summary['overruns']} overrun, {summary['crc_errors']} CRC errors"
        ]

    # -- internals --------------------------------------------------------------------
    def _cue(self, finding: TransportFinding, key: str) -> None:
        cue = finding.details
        at = finding.time
        self.cues += 1
        takes_effect = cue.get("splice_at")
        details = {k: cue.get(k) for k in self.CUE_FIELDS if cue.get(k) is not None}
        if takes_effect is not None:
            details["splice_at"] = round(takes_effect, 3)
        self._instant("scte35_cue", at, Severity.INFO, f"{cue.get('event_id')}", **details)
        if takes_effect is None:
            takes_effect = at  # immediate
        elif takes_effect < at - self.config.late_tolerance_s:
            self._instant(
                "scte35_late_cue", at, Severity.WARNING, key, late_s=round(at - takes_effect, 3)
            )
        if cue.get("out") is None or cue.get("cancel"):
            if cue.get("cancel"):
                self.open = [b for b in self.open if b.event_id != cue.get("event_id")]
            return
        if cue["out"]:
            self.breaks += 1
            duration = cue.get("duration_s")
            ends = None if duration is None else takes_effect + duration
            opened = _Break(cue.get("event_id"), takes_effect, ends)
            if cue.get("auto_return"):
                opened.due_end, opened.auto_return_by = None, ends
            self.open = [*self.open[-(MAX_OPEN_BREAKS - 1) :], opened]
            return
        # A cue-in ends the break of its event (one without an id: the latest open).
        event_id = cue.get("event_id")
        ending = next((b for b in self.open if b.event_id == event_id), None)
        if ending is None and event_id is None and self.open:
            ending = self.open[-1]
        if ending is None:
            self._instant("scte35_unmatched_cue_in", at, Severity.WARNING, key, **details)
            return
        ending.returns_at = takes_effect
        self._tick(at)

    def _tick(self, now: MediaTime) -> None:
        """A break whose cue-in is not in effect by its end plus the tolerance overruns,
        from its end until the cue-in takes effect; a break over is forgotten."""
        tolerance = self.config.overrun_tolerance_s
        for open_break in list(self.open):
            due, returns = open_break.due_end, open_break.returns_at
            overruns = (
                due is not None
                and not open_break.overrunning
                and now > due + tolerance
                and (returns is None or returns > due + tolerance)
            )
            if overruns:
                assert due is not None
                open_break.overrunning = True
                self.overruns += 1
                self.emit(
                    "ad_break_overrun",
                    "start",
                    due,
                    Severity.ERROR,
                    _key(open_break),
                    event_id=open_break.event_id,
                    break_start=round(open_break.starts, 3),
                )
            if returns is not None and now >= returns:
                if open_break.overrunning:
                    self.emit("ad_break_overrun", "end", returns, Severity.ERROR, _key(open_break))
                self.open.remove(open_break)
            elif (by := open_break.auto_return_by) is not None and now > by + tolerance:
                self.open.remove(open_break)  # it returned by itself

    def _instant(
        self, type_: str, at: MediaTime, severity: Severity, key: str, **details: Any
    ) -> None:
        self.emit(type_, "start", at, severity, key, **details)
        self.emit(type_, "end", at, severity, key, **details)


def _key(open_break: _Break) -> str:
    return f"{open_break.event_id}"
