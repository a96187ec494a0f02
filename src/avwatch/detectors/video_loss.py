"""Video loss: pictures stop arriving while the programme (its audio, or its own
timeline) goes on. Exposed as ``video_loss`` events spanning the missing time."""

from __future__ import annotations

from avwatch.detectors._loss import LossConfig, LossDetector


class VideoLossDetector(LossDetector):
    key = "video_loss"
    needs = frozenset({"video"})
    emits = ("video_loss",)
    Config = LossConfig
    description = "Video data stops (PTS gap, or video ends) while time goes on."
    watched = "video"
