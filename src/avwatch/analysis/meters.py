"""Per-channel audio levels, as a meter bridge shows them: the sample peak and the RMS
of each channel since the last reading, in dBFS, under the layout's channel names."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from avwatch.types import AudioBlock, MediaTime

__all__ = ["FLOOR_DBFS", "AudioMeter", "Levels"]

FLOOR_DBFS = -120.0  # digital silence is drawn here, not at minus infinity


@dataclass(frozen=True, slots=True)
class Levels:
    time: MediaTime
    """The end of the audio measured."""
    channels: tuple[str, ...]
    peak_dbfs: tuple[float, ...]
    rms_dbfs: tuple[float, ...]

    def to_api(self) -> dict[str, object]:
        return {
            "time": round(self.time, 3),
            "channels": list(self.channels),
            "peak_dbfs": [round(v, 1) for v in self.peak_dbfs],
            "rms_dbfs": [round(v, 1) for v in self.rms_dbfs],
        }


def _dbfs(amplitude: float) -> float:
    return 20 * math.log10(amplitude) if amplitude > 0 else FLOOR_DBFS


class AudioMeter:
    def __init__(self, channels: tuple[str, ...]) -> None:
        self.channels = channels
        n = len(channels)
        self._peak = np.zeros(n)
        self._square_sum = np.zeros(n)
        self._samples = 0
        self._end: MediaTime = 0.0

    def add(self, block: AudioBlock) -> None:
        samples = block.samples
        if samples.shape[0] != len(self.channels) or samples.shape[1] == 0:
            return  # a block of another layout: the decoder changed it mid-stream
        np.maximum(self._peak, np.abs(samples).max(axis=1), out=self._peak)
        self._square_sum += np.einsum("ij,ij->i", samples, samples)
        self._samples += samples.shape[1]
        self._end = block.end

    def read(self) -> Levels | None:
        """The levels since the last reading (None: no audio came), and start anew."""
        if self._samples == 0:
            return None
        rms = np.sqrt(self._square_sum / self._samples)
        levels = Levels(
            self._end,
            self.channels,
            tuple(_dbfs(float(v)) for v in self._peak),
            tuple(_dbfs(float(v)) for v in rms),
        )
        self._peak[:] = 0
        self._square_sum[:] = 0
        self._samples = 0
        return levels
