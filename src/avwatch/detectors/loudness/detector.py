"""Loudness off target (ITU-R BS.1770-4, EBU R128, ATSC A/85).

Metrics: momentary (400 ms) and short-term (3 s) loudness every 100 ms, and
for the programme the integrated loudness, loudness range and true peak (see
avwatch.detectors.loudness.meter for the meter). A ``loudness`` event opens when short-term
loudness stays further than ``short_term_tolerance_lu`` from the target for
``min_duration_s``; its start and end are taken from the momentary loudness,
which follows a change within 400 ms rather than 3 s. At end of stream a
programme whose integrated loudness misses the target by more than
``integrated_tolerance_lu``, or whose true peak is over the ceiling, gets a
``loudness`` event over the whole programme (``measure`` says which).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from avwatch.detectors.base import Detector, DetectorConfig, Plot, RunTracker
from avwatch.detectors.loudness.meter import LoudnessMeter
from avwatch.types import AudioBlock, MediaTime, Severity, StreamInfo

PRESETS: dict[str, tuple[float, float]] = {
    # name: (target LUFS, max true peak dBTP)
    "ebu_r128": (-23.0, -1.0),
    "atsc_a85": (-24.0, -2.0),
}


class LoudnessConfig(DetectorConfig):
    preset: Literal["ebu_r128", "atsc_a85"] = Field(
        "ebu_r128",
        description="Target and true-peak ceiling: EBU R128 (-23 LUFS, -1 dBTP) "
        "or ATSC A/85 (-24 LKFS, -2 dBTP).",
    )
    target_lufs: float | None = Field(
        None, ge=-60.0, le=0.0, description="Programme loudness target; default from preset."
    )
    max_true_peak_dbtp: float | None = Field(
        None, ge=-20.0, le=3.0, description="True-peak ceiling; default from preset."
    )
    short_term_tolerance_lu: float = Field(
        6.0, ge=0.5, le=30.0, description="Short-term loudness this far off target is a defect."
    )
    min_duration_s: float = Field(
        10.0, ge=0.5, le=3600.0, description="How long short-term must stay off target."
    )
    integrated_tolerance_lu: float = Field(
        1.0,
        ge=0.1,
        le=30.0,
        description="Allowed programme (integrated) deviation, EBU R128's ±1 LU.",
    )
    min_programme_s: float = Field(
        30.0, ge=3.0, le=86400.0, description="Programme checks run only on this much audio."
    )
    ignore_below_lufs: float = Field(
        -50.0,
        ge=-70.0,
        le=-20.0,
        description="Quieter than this is the silence detector's business.",
    )

    @model_validator(mode="after")
    def _fill_from_preset(self) -> LoudnessConfig:
        target, peak = PRESETS[self.preset]
        if self.target_lufs is None:
            object.__setattr__(self, "target_lufs", target)
        if self.max_true_peak_dbtp is None:
            object.__setattr__(self, "max_true_peak_dbtp", peak)
        return self


class LoudnessDetector(Detector[LoudnessConfig]):
    key = "loudness"
    needs = frozenset({"audio"})
    emits = ("loudness",)
    Config = LoudnessConfig
    description = "Loudness off target: short-term drift, programme integrated, true peak."
    plots = (
        Plot(
            "Loudness (LUFS): momentary, short-term, target",
            ("momentary_lufs", "short_term_lufs"),
            target_setting="target_lufs",
        ),
    )
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "qc": {"min_duration_s": 3.0}
    }  # one short-term window off target

    def __init__(self, config: LoudnessConfig, info: StreamInfo) -> None:
        super().__init__(config, info)
        assert info.audio is not None
        self.meter = LoudnessMeter(info.audio.sample_rate, info.audio.channel_names)
        self.target = float(config.target_lufs or PRESETS[config.preset][0])
        # Hold a run open for one short-term window: the reading lags by that much.
        self.run = RunTracker(config.min_duration_s, end_hold_s=3.5)
        # Momentary readings of the last short-term window, to date a change precisely.
        self.recent: deque[tuple[MediaTime, float]] = deque(maxlen=30)
        self.direction = 0
        self.extreme: float | None = None
        self.last_end: MediaTime | None = None
        self.first_time: MediaTime | None = None
        self.audio_seconds = 0.0

    def on_audio(self, block: AudioBlock) -> None:
        if self.first_time is None:
            self.first_time = block.time
        if self.last_end is not None and abs(block.time - self.last_end) > 0.05:
            self.meter.reset()  # a gap: the windows would mix audio from both sides
            self.recent.clear()
        self.last_end = block.end
        self.audio_seconds += block.end - block.time
        for step in self.meter.feed(block.samples, block.time):
            self._step(step.end, step.momentary_lufs, step.short_term_lufs)

    def _step(self, end: MediaTime, momentary: float, short_term: float) -> None:
        tol = self.config.short_term_tolerance_lu
        self.recent.append((end, momentary))
        if momentary > -70:
            self.record("momentary_lufs", end, momentary)
        if short_term == -math.inf:
            return
        self.record("short_term_lufs", end, short_term)
        off = short_term - self.target
        direction = 0
        if short_term >= self.config.ignore_below_lufs and abs(off) > tol:
            direction = 1 if off > 0 else -1
        if self.run.start is None:
            self.direction = direction
        active = direction != 0 and direction == self.direction
        if active:
            # Short-term lags a change by up to 3 s; date the run by the momentary
            # readings off target in the same direction (by more than tol / 2).
            readings = [
                (t, m != -math.inf and (m - self.target) * self.direction > tol / 2)
                for t, m in self.recent
            ]
            last_off = max((t for t, is_off in readings if is_off), default=end)
            start = end - 0.1
            if self.run.start is None:  # a new run: back to where the change began
                start = end - 0.4
                for t, is_off in reversed(readings):
                    if not is_off:
                        break
                    start = t - 0.4
            changes = self.run.update(True, start, last_off)
            pick = max if self.direction > 0 else min
            self.extreme = short_term if self.extreme is None else pick(self.extreme, short_term)
        else:
            changes = self.run.update(False, end - 0.1, end)
        if changes:
            # "lufs" is the furthest short-term reading of the run so far.
            self._emit(
                changes,
                measure="short_term",
                lufs=round(short_term if self.extreme is None else self.extreme, 1),
            )
        if self.run.start is None:
            self.extreme = None

    def _emit(self, changes: Any, **details: Any) -> None:
        self.emit_changes(
            changes,
            "loudness",
            Severity.WARNING,
            details["measure"],
            target_lufs=self.target,
            **details,
        )

    def flush(self, end: MediaTime) -> None:
        if self.extreme is not None:
            self._emit(self.run.flush(), measure="short_term", lufs=round(self.extreme, 1))
        if self.audio_seconds < self.config.min_programme_s or self.first_time is None:
            return
        start = self.first_time
        integrated = self.meter.integrated_lufs()
        if integrated > -70 and abs(integrated - self.target) > self.config.integrated_tolerance_lu:
            span = (("start", start), ("end", end))
            self._emit(span, measure="integrated", lufs=round(integrated, 1))
        peak = self.meter.true_peak_dbtp()
        if self.config.max_true_peak_dbtp is not None and peak > self.config.max_true_peak_dbtp:
            span = (("start", start), ("end", end))
            self._emit(span, measure="true_peak", dbtp=round(peak, 2))

    @classmethod
    def report_lines(cls, summary: dict[str, Any]) -> list[str]:
        return [
            f"loudness: integrated {summary['integrated_lufs']} LUFS "
            f"(target {summary['target_lufs']}), range {summary['loudness_range_lu']} LU, "
            f"true peak {summary['true_peak_dbtp']} dBTP"
        ]

    def summary(self) -> dict[str, Any]:
        integrated = self.meter.integrated_lufs()
        peak = self.meter.true_peak_dbtp()
        return {
            "target_lufs": self.target,
            "integrated_lufs": None if integrated == -math.inf else round(integrated, 2),
            "loudness_range_lu": round(self.meter.loudness_range_lu(), 2),
            "true_peak_dbtp": None if peak == -math.inf else round(peak, 2),
        }
