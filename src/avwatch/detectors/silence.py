"""Silence: the whole programme, or one channel of it, goes quiet.

Metric: the RMS level of each channel per 10 ms window, in dBFS (recorded as
``level_dbfs``, the loudest channel, once per block). Silence of all channels
is a ``silence`` event with ``channels: "all"``; one dead channel while the
others carry sound (a broken leg of a stereo pair) is a ``silence`` event
naming that channel. LFE is ignored by default: it is legitimately quiet most
of the time. A programme mixed low is a loudness problem, not silence (docs/media.md
trap 7): the threshold is far below any real programme level.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from avwatch.detectors._windows import BoolArray, per_window, runs, window_edges
from avwatch.detectors.base import Detector, DetectorConfig, Plot, RunTracker
from avwatch.types import AudioBlock, MediaTime, Severity, StreamInfo


class SilenceConfig(DetectorConfig):
    threshold_dbfs: float = Field(
        -60.0, ge=-120.0, le=-20.0, description="A window at or below this RMS level is silent."
    )
    min_duration_s: float = Field(
        2.0, ge=0.02, le=3600.0, description="Shortest silence reported (FFmpeg's default too)."
    )
    per_channel: bool = Field(True, description="Also report a single silent channel.")
    ignore_lfe: bool = Field(
        True, description="Leave the LFE channel out of the per-channel check."
    )


class SilenceDetector(Detector[SilenceConfig]):
    key = "silence"
    needs = frozenset({"audio"})
    emits = ("silence",)
    Config = SilenceConfig
    description = "Silence of the whole programme or of single channels."
    plots = (Plot("Audio level (dBFS)", ("level_dbfs",), max=0.0),)

    def __init__(self, config: SilenceConfig, info: StreamInfo) -> None:
        super().__init__(config, info)
        assert info.audio is not None
        self.names = info.audio.channel_names
        self.threshold_power = 10 ** (config.threshold_dbfs / 10)  # mean square
        self.all_run = RunTracker(config.min_duration_s)
        self.channel_runs = {
            i: RunTracker(config.min_duration_s)
            for i, name in enumerate(self.names)
            if config.per_channel
            and len(self.names) > 1
            and not (config.ignore_lfe and name.upper().startswith("LFE"))
        }

    def on_audio(self, block: AudioBlock) -> None:
        size, edges = window_edges(block)
        power = per_window(np.square(block.samples), size, "mean")
        silent = power <= self.threshold_power
        all_silent: BoolArray = np.asarray(silent.all(axis=0))
        loudest = float(power.max())
        self.record("level_dbfs", block.time, 10 * math.log10(loudest) if loudest > 0 else -120.0)
        for active, start, end in runs(all_silent, edges):
            changes = self.all_run.update(active, start, end)
            if changes:
                self.emit_changes(changes, "silence", Severity.ERROR, "all", channels="all")
        for i, run in self.channel_runs.items():
            name = self.names[i]
            for active, start, end in runs(silent[i] & ~all_silent, edges):
                changes = run.update(active, start, end)
                if changes:
                    self.emit_changes(changes, "silence", Severity.ERROR, name, channels=[name])

    def suspects(self) -> bool:
        return self.all_run.start is not None

    def flush(self, end: MediaTime) -> None:
        self.emit_changes(self.all_run.flush(), "silence", Severity.ERROR, "all", channels="all")
        for i, run in self.channel_runs.items():
            name = self.names[i]
            self.emit_changes(run.flush(), "silence", Severity.ERROR, name, channels=[name])
