"""Frozen picture: the image stops changing.

Metric: the largest mean absolute difference between consecutive analysis
pictures over a grid of 16x16-pixel blocks (``motion`` per frame, 8-bit
levels). Using the largest block, not the whole-picture mean as FFmpeg's
freezedetect does, keeps a static scene with a small moving part (a ticker, a
presenter's hands) from reading as frozen, while the small, spread-out
re-encoding noise of a truly frozen picture (x264 refreshes it at each
keyframe) stays under the threshold. A flat picture (black, a plain slate)
is not judged at all: it has nothing to freeze.
"""

from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import Field

from avwatch.detectors.base import Detector, DetectorConfig, Plot, RunTracker
from avwatch.types import MediaTime, Severity, StreamInfo, VideoFrame

BLOCK = 16


class FreezeConfig(DetectorConfig):
    max_motion_levels: float = Field(
        # x264 refines a repeated picture over a few frames (up to ~3 levels seen
        # on grainy 320x180); 4 lets the freeze start on the first repeat, while
        # real motion measures 10 and more.
        4.0,
        ge=0.0,
        le=50.0,
        description="A picture is unchanged when no 16x16 block moved more than this "
        "mean absolute difference (8-bit levels).",
    )
    min_duration_s: float = Field(
        2.0, ge=0.1, le=3600.0, description="Shortest freeze reported (FFmpeg's default too)."
    )
    patrol_max_size_ratio: float = Field(
        0.02,
        ge=0.0,
        le=1.0,
        description="Patrol: keyframes alike are a freeze when the pictures between them "
        "coded to at most this share of a keyframe's size (a repeated picture: about 0.001 "
        "to 0.01; a ticker over a still: 0.04).",
    )
    min_detail_levels: float = Field(
        2.0,
        ge=0.0,
        le=50.0,
        description="Pictures flatter than this (luma standard deviation, 8-bit levels) are "
        "not judged: a black or plain screen has nothing to freeze, and black is reported "
        "by the black detector.",
    )


class FreezeDetector(Detector[FreezeConfig]):
    key = "freeze"
    needs = frozenset({"video"})
    emits = ("freeze",)
    Config = FreezeConfig
    description = "Frozen picture, robust to re-encoding noise and to small motion."
    plots = (Plot("Motion (largest block change, levels)", ("motion",), min=0.0),)
    profiles: ClassVar[dict[str, dict[str, Any]]] = {"qc": {"min_duration_s": 0.3}}

    def __init__(self, config: FreezeConfig, info: StreamInfo) -> None:
        super().__init__(config, info)
        self.run = RunTracker(self.config.min_duration_s)
        self.previous: npt.NDArray[np.uint8] | None = None
        self.previous_time: MediaTime = 0.0
        self.alike_keys = False  # patrol: the last two keyframes look frozen
        self.previous_sampled = False
        self.before_previous_time: MediaTime | None = None
        # Patrol: a freeze found on keyframes began after the keyframe before its first.
        self.began_after: dict[str, Any] = {}

    def on_video(self, frame: VideoFrame) -> None:
        h, w = frame.luma.shape
        current = frame.luma[: h - h % BLOCK, : w - w % BLOCK]
        previous, previous_time = self.previous, self.previous_time
        before_previous, self.before_previous_time = self.before_previous_time, previous_time
        after_patrol = self.previous_sampled and not frame.sampled
        self.previous, self.previous_time = current, frame.time
        self.previous_sampled = frame.sampled
        # The first picture in full after a patrolled keyframe is a GOP away from it,
        # and without the coded size between them: nothing to judge.
        if previous is None or previous.shape != current.shape or after_patrol:
            return
        # |a - b| in uint8 (one OpenCV call, where numpy needs max - min),
        # summed in uint16 (16 x 255 and 16 x 4080 both fit): SIMD-width arithmetic.
        diff = cv2.absdiff(current, previous)
        bh, bw = diff.shape[0] // BLOCK, diff.shape[1] // BLOCK
        # Rows first, then columns: two contiguous reductions beat one 4-D one.
        rows = diff.reshape(bh, BLOCK, bw * BLOCK).sum(axis=1, dtype=np.uint16)
        blocks = rows.reshape(bh, bw, BLOCK).sum(axis=2, dtype=np.uint32)
        motion = float(blocks.max()) / (BLOCK * BLOCK)
        self.record("motion", frame.time, motion)
        # An unchanged picture means the *previous* one is still on screen.
        frozen = motion <= self.config.max_motion_levels and (
            # Every other line is enough to tell a plain screen, at half the cost.
            float(current[::2].std(dtype=np.float32)) >= self.config.min_detail_levels
        )
        self.run.min_duration_s = self.config.min_duration_s
        self.run.step_s = frame.duration
        self.alike_keys = False
        if frame.sampled:
            # Patrol: two keyframes alike are a freeze when the pictures between them
            # coded to next to nothing too. Content that repeats with the keyframe
            # spacing (a loop, a ticker's cycle) makes them alike, not its pictures
            # small. Alike keyframes alone only ask for a look in full (suspects).
            self.alike_keys = frozen
            share = frame.between_share
            frozen = frozen and (share is None or share <= self.config.patrol_max_size_ratio)
            self.run.min_duration_s = max(self.config.min_duration_s, frame.duration)
            self.run.step_s = 0.0  # a keyframe stands for its GOP: no finer measure
        began = self.run.start
        changes = self.run.update(frozen, previous_time, frame.time + frame.duration)
        if began is None and self.run.start is not None:
            after = before_previous if frame.sampled else None
            self.began_after = {} if after is None else {"began_after": round(after, 3)}
        if changes:
            self.emit_changes(changes, "freeze", Severity.ERROR, **self.began_after)

    def suspects(self) -> bool:
        return self.run.start is not None or self.alike_keys

    def flush(self, end: MediaTime) -> None:
        self.emit_changes(self.run.flush(), "freeze", Severity.ERROR, **self.began_after)
        self.previous = None
