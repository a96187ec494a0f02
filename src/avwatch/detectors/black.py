"""Black picture: no programme, not merely a dark one.

Metric: the share of analysis-luma pixels at or below ``pixel_threshold_ratio``
of full range (as FFmpeg's blackdetect ``pix_th``), and the spread (standard
deviation) of those dark pixels. A picture is black when almost all pixels are
dark *and* the dark pixels are flat: a night scene is dark but textured, a
black screen with a channel logo is still black. Exposed as ``black_ratio``
per frame and ``black`` events.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from avwatch.detectors.base import Detector, DetectorConfig, Plot, RunTracker
from avwatch.types import MediaTime, Severity, StreamInfo, VideoFrame


class BlackConfig(DetectorConfig):
    pixel_threshold_ratio: float = Field(
        0.10, ge=0.0, le=0.5, description="A pixel is dark at or below this fraction of full range."
    )
    picture_black_ratio: float = Field(
        0.98, ge=0.5, le=1.0, description="Share of dark pixels that makes a picture black."
    )
    max_spread_levels: float = Field(
        3.0,
        ge=0.0,
        le=50.0,
        description="Largest standard deviation of the dark pixels (8-bit levels); "
        "above it the picture is a dark scene, not black.",
    )
    min_duration_s: float = Field(
        0.06, ge=0.0, le=3600.0, description="Shortest black run reported (3 frames at 50 fps)."
    )
    min_frames: int = Field(
        3,
        ge=1,
        le=1000,
        description="Fewest black frames reported, whatever the frame rate (a single black "
        "frame is an edit's dip through black, not a defect).",
    )


class BlackDetector(Detector[BlackConfig]):
    key = "black"
    needs = frozenset({"video"})
    emits = ("black",)
    Config = BlackConfig
    description = "Black picture (flat and dark), as distinct from a dark scene."
    plots = (Plot("Black (share of dark pixels)", ("black_ratio",), min=0.0, max=1.0),)
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "qc": {"min_frames": 1, "min_duration_s": 0.0}
    }  # a single black frame

    def __init__(self, config: BlackConfig, info: StreamInfo) -> None:
        super().__init__(config, info)
        self.run = RunTracker(self.config.min_duration_s)
        self.level = int(self.config.pixel_threshold_ratio * 255)
        self.last_time: MediaTime | None = None
        # Patrol: a run found on a keyframe began after the keyframe before it.
        self.began_after: dict[str, Any] = {}

    def on_video(self, frame: VideoFrame) -> None:
        dark = frame.luma <= self.level
        ratio = np.count_nonzero(dark) / dark.size
        black = bool(ratio >= self.config.picture_black_ratio) and (
            float(frame.luma[dark].std()) <= self.config.max_spread_levels
        )
        self.record("black_ratio", frame.time, ratio)
        # At low frame rates a few frames outlast min_duration_s: ask for both. A
        # patrolled keyframe stands for its GOP: two in a row (a cut's dip through black
        # can fall on one, as encoders put a keyframe at a cut).
        frames = 2 if frame.sampled else self.config.min_frames
        self.run.min_duration_s = max(self.config.min_duration_s, frames * frame.duration)
        self.run.step_s = 0.0 if frame.sampled else frame.duration
        began = self.run.start
        changes = self.run.update(black, frame.time, frame.time + frame.duration)
        if began is None and self.run.start is not None:
            after = self.last_time if frame.sampled else None
            self.began_after = {} if after is None else {"began_after": round(after, 3)}
        self.last_time = frame.time
        if changes:
            self.emit_changes(changes, "black", Severity.ERROR, **self.began_after)

    def suspects(self) -> bool:
        return self.run.start is not None

    def flush(self, end: MediaTime) -> None:
        self.emit_changes(self.run.flush(), "black", Severity.ERROR, **self.began_after)
