"""Clipping: the signal was driven past full scale somewhere upstream.

Metric: per 10 ms window, how many samples lie at or above ``level_dbfs``
(near full scale) — ``clipped_samples``. A clean loud master touches its peak
for a sample or two per cycle; a clipped one sits on it. After a lossy codec
the flat tops become ringing that overshoots full scale (docs/media.md trap 4: 1.05
seen after AAC), so the test counts samples near or above full scale rather
than samples at exactly ±1.0.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from avwatch.detectors._windows import per_window, runs, window_edges
from avwatch.detectors.base import Detector, DetectorConfig, RunTracker
from avwatch.types import AudioBlock, MediaTime, Severity, StreamInfo


class ClippingConfig(DetectorConfig):
    level_dbfs: float = Field(
        -0.5, ge=-6.0, le=0.0, description="A sample at or above this level counts as clipped."
    )
    min_samples_per_window: int = Field(
        4,
        ge=1,
        le=480,
        description="Clipped samples in one 10 ms window (one channel) that "
        "make the window clipped.",
    )
    end_hold_s: float = Field(
        0.5, ge=0.0, le=10.0, description="Clipping ends after this long without a clipped window."
    )
    min_duration_s: float = Field(
        0.0, ge=0.0, le=60.0, description="Shortest clipping run reported."
    )


class ClippingDetector(Detector[ClippingConfig]):
    key = "clipping"
    needs = frozenset({"audio"})
    emits = ("clipping",)
    Config = ClippingConfig
    description = "Audio clipping, including after lossy coding."

    def __init__(self, config: ClippingConfig, info: StreamInfo) -> None:
        super().__init__(config, info)
        self.level = 10 ** (config.level_dbfs / 20)
        self.run = RunTracker(config.min_duration_s, config.end_hold_s)
        self.peak = 0.0
        self.clipped_windows = 0

    def on_audio(self, block: AudioBlock) -> None:
        magnitude = np.abs(block.samples)
        hot = magnitude >= self.level
        if not hot.any():  # the common case: nothing near full scale in the block
            changes = self.run.update(False, block.time, block.end)
        else:
            self.peak = max(self.peak, float(magnitude.max()))
            size, edges = window_edges(block)
            counts = per_window(hot, size, "sum").max(axis=0)
            clipped = counts >= self.config.min_samples_per_window
            self.clipped_windows += int(clipped.sum())
            changes = ()
            for active, start, end in runs(clipped, edges):
                changes += self.run.update(active, start, end)
        if changes:
            self.emit_changes(changes, "clipping", Severity.WARNING)

    def flush(self, end: MediaTime) -> None:
        self.emit_changes(self.run.flush(), "clipping", Severity.WARNING)

    def summary(self) -> dict[str, float | int]:
        return {"clipped_windows": self.clipped_windows}
