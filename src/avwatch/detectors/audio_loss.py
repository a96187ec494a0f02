"""Audio loss: audio stops arriving while the programme goes on. A gap in audio
PTS is loss, not silence (docs/media.md trap 7). Exposed as ``audio_loss`` events."""

from __future__ import annotations

from pydantic import Field

from avwatch.detectors._loss import LossConfig, LossDetector


class AudioLossConfig(LossConfig):
    min_gap_s: float = Field(
        0.1, ge=0.02, le=60.0, description="Missing audio for this long is a loss (it is heard)."
    )


class AudioLossDetector(LossDetector):
    key = "audio_loss"
    needs = frozenset({"audio"})
    emits = ("audio_loss",)
    Config = AudioLossConfig
    description = "Audio data stops (PTS gap, or audio ends) while time goes on."
    watched = "audio"
