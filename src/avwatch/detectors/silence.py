"""Silence: the whole programme, or one channel of a pair, goes quiet.

A 10 ms window is silent when its RMS level is at or below ``threshold_dbfs``
and no sample in it peaks above ``peak_threshold_dbfs``. The peak matters: room
tone between lines of dialogue can sit under -60 dBFS RMS while its samples peak
above it (FFmpeg's silencedetect judges by sample amplitude alone). The loudest
channel's RMS is recorded as ``level_dbfs`` once per block.

A run's edges are found to the sample: the quiet samples at the end of the
window before it and at the start of the window after it belong to it, so a
silence as long as ``min_duration_s`` is not cut short by window rounding.

Silence of all channels is a ``silence`` event with ``channels: "all"``. One
channel is reported alone only when it is silent while its partner of a
left/right pair carries sound (a broken leg of a stereo pair, a dead front
left in 5.1): centre-only dialogue with quiet fronts and surrounds is normal
5.1, and so is a quiet centre or LFE. A programme mixed low is a loudness
problem, not silence (docs/media.md trap 7): the thresholds are far below any
real programme level.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from avwatch.detectors._windows import (
    WINDOW_S,
    BoolArray,
    FloatArray,
    per_window,
    window_edges,
)
from avwatch.detectors.base import Detector, DetectorConfig, Plot, RunTracker
from avwatch.types import AudioBlock, MediaTime, Severity, StreamInfo

ALL = -1  # the run of every channel together, beside one run per paired channel
CONTIGUOUS_S = 0.001  # blocks this close are one stream of samples


class SilenceConfig(DetectorConfig):
    threshold_dbfs: float = Field(
        -60.0, ge=-120.0, le=-20.0, description="A window at or below this RMS level is silent..."
    )
    peak_threshold_dbfs: float = Field(
        -60.0,
        ge=-120.0,
        le=-10.0,
        description="...and no sample in it peaks above this, as in FFmpeg's silencedetect "
        "(room tone under -60 dBFS RMS still peaks above it; a dead line does not).",
    )
    min_duration_s: float = Field(
        2.0, ge=0.02, le=3600.0, description="Shortest silence reported (FFmpeg's default too)."
    )
    per_channel: bool = Field(
        True, description="Also report one channel of a left/right pair silent alone."
    )


def channel_partners(names: tuple[str, ...]) -> dict[int, int]:
    """Each channel's partner of a left/right pair, by layout name: FL-FR, BL-BR, SL-SR,
    FLC-FRC, TFL-TFR... Centre, LFE and unnamed channels have none."""
    index = {name.upper(): i for i, name in enumerate(names)}
    partners = {}
    for name, i in index.items():
        side = next((k for k, c in enumerate(name) if c in "LR"), None)
        if side is None or name.startswith("LFE"):
            continue
        mirror = name[:side] + ("R" if name[side] == "L" else "L") + name[side + 1 :]
        if mirror in index:
            partners[i] = index[mirror]
    return partners


class SilenceDetector(Detector[SilenceConfig]):
    key = "silence"
    needs = frozenset({"audio"})
    emits = ("silence",)
    Config = SilenceConfig
    description = "Silence of the whole programme or of one channel of a pair."
    plots = (Plot("Audio level (dBFS)", ("level_dbfs",), max=0.0),)
    profiles: ClassVar[dict[str, dict[str, Any]]] = {"qc": {"min_duration_s": 0.1}}

    def __init__(self, config: SilenceConfig, info: StreamInfo) -> None:
        super().__init__(config, info)
        assert info.audio is not None
        self.names = info.audio.channel_names
        self.threshold_power = 10 ** (config.threshold_dbfs / 10)  # mean square
        self.peak_amplitude = 10 ** (config.peak_threshold_dbfs / 20)
        self.partners = channel_partners(self.names) if config.per_channel else {}
        self.runs = {i: RunTracker(config.min_duration_s) for i in (ALL, *self.partners)}
        for run in self.runs.values():
            # A lossy codec rings a few milliseconds into a silence's edges (up to 2.3 ms
            # measured after AAC): its length is known to about a window.
            run.step_s = WINDOW_S
        # Per run: where the last block ended, whether silent, and how long it ended quiet.
        self.last_block: dict[int, tuple[MediaTime, bool, float]] = {}

    def on_audio(self, block: AudioBlock) -> None:
        size, edges = window_edges(block)
        samples = block.samples
        power = per_window(np.square(samples), size, "mean")
        quiet = np.abs(samples) <= self.peak_amplitude
        loud_samples = per_window(~quiet, size, "sum")
        silent = (power <= self.threshold_power) & (loud_samples == 0)
        loudest = float(power.max())
        self.record("level_dbfs", block.time, 10 * math.log10(loudest) if loudest > 0 else -120.0)
        all_silent: BoolArray = np.asarray(silent.all(axis=0))
        all_quiet: BoolArray = np.asarray(quiet.all(axis=0))
        self._track(ALL, all_silent, all_quiet, edges, size, block, "all")
        for i, partner in self.partners.items():
            alone: BoolArray = silent[i] & ~silent[partner]
            self._track(i, alone, quiet[i], edges, size, block, self.names[i])

    def _track(
        self,
        key: int,
        flags: BoolArray,
        quiet: BoolArray,
        edges: FloatArray,
        size: int,
        block: AudioBlock,
        channel: str,
    ) -> None:
        ended, ended_silent, quiet_s = self.last_block.get(key, (math.nan, False, 0.0))
        if abs(ended - block.time) > CONTIGUOUS_S:
            ended_silent, quiet_s = False, 0.0
        for active, start, end in _runs_to_the_sample(
            flags, quiet, edges, size, block.sample_rate, quiet_s, ended_silent
        ):
            changes = self.runs[key].update(active, start, end)
            if changes:
                channels = "all" if key == ALL else [channel]
                self.emit_changes(changes, "silence", Severity.ERROR, channel, channels=channels)
        tail = _leading_true(quiet[::-1]) / block.sample_rate
        self.last_block[key] = (float(edges[-1]), bool(flags[-1]), tail)

    def suspects(self) -> bool:
        return self.runs[ALL].start is not None

    def flush(self, end: MediaTime) -> None:
        for key, run in self.runs.items():
            channel = "all" if key == ALL else self.names[key]
            channels = "all" if key == ALL else [channel]
            self.emit_changes(run.flush(), "silence", Severity.ERROR, channel, channels=channels)


def _leading_true(flags: BoolArray) -> int:
    """How many of ``flags`` are true before the first false one."""
    first_false = np.flatnonzero(~flags)
    return int(first_false[0]) if first_false.size else len(flags)


def _runs_to_the_sample(
    flags: BoolArray,
    quiet: BoolArray,
    edges: FloatArray,
    size: int,
    rate: int,
    quiet_before_s: float,
    silent_before: bool,
) -> Iterator[tuple[bool, MediaTime, MediaTime]]:
    """Runs of per-window ``flags`` as (flag, start, end), each edge moved to the sample:
    a silent run takes in the quiet samples around it, also across the block's edges
    (``quiet_before_s``: how long the block before ended quiet; ``silent_before``:
    whether it ended in a silent run)."""
    change = np.flatnonzero(flags[1:] != flags[:-1]) + 1
    bounds = [0, *change.tolist(), len(flags)]
    edge_times = [float(edges[0])]
    for c in bounds[1:-1]:
        if flags[c]:  # silence starts: the quiet end of the window before belongs to it
            before = quiet[(c - 1) * size : c * size]
            edge_times.append(float(edges[c]) - _leading_true(before[::-1]) / rate)
        else:  # silence ends: so does the quiet start of the window after
            after = quiet[c * size : (c + 1) * size]
            edge_times.append(float(edges[c]) + _leading_true(after) / rate)
    edge_times.append(float(edges[-1]))
    if flags[0] and not silent_before:
        edge_times[0] -= quiet_before_s
    elif not flags[0] and silent_before:  # the silence of the block before ends here
        head = float(edges[0]) + _leading_true(quiet[:size]) / rate
        if head > edge_times[0]:
            yield True, edge_times[0], head
            edge_times[0] = head
    for k in range(1, len(edge_times)):  # an all-quiet window may be claimed from both sides
        edge_times[k] = max(edge_times[k], edge_times[k - 1])
    for k in range(len(bounds) - 1):
        yield bool(flags[bounds[k]]), edge_times[k], edge_times[k + 1]
