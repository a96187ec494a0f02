"""Truth that holds at the ``qc`` operating point only, measured on what was encoded.

File QC reports short defects a live operator does not want: a single black
frame (a dip through black in an edit), any 0.1 s of digital silence (a gated
voice prompt's pauses, the gaps of a line-up pattern's beeps), and short-term
loudness off target for 3 s (a clipped passage driven 12 dB hot). They are in
the content without being put there as defects, so they are measured on the
pictures and samples the encoder was given, and marked ``details.profiles:
["qc"]``: the scorer drops them at other profiles, where finding them is a
false alarm. Loudness is judged by the loudness detector's own rule with its
qc options, on the samples before coding: BS.1770 defines the measure, and the
eval asks whether coding and decoding keep the answer.

Clipping is measured the same way at every profile: where the samples given to
the encoder sit on full scale, whichever gain put them there (a clipping
defect's drive, or a loudness defect's +12 dB on a recording with peaks).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt

from avwatch.config import EngineConfig, detector_options
from avwatch.detectors.black import BlackConfig
from avwatch.detectors.clipping import ClippingConfig
from avwatch.detectors.loudness.detector import LoudnessConfig, LoudnessDetector
from avwatch.detectors.silence import SilenceConfig, SilenceDetector
from avwatch.lab.truth import MERGE_GAP_S, TruthEvent
from avwatch.types import AudioBlock, AudioInfo, StreamInfo

__all__ = [
    "QC_ONLY",
    "BlackFrames",
    "clipping",
    "loudness_drifts",
    "loudness_runs",
    "loudness_shift",
    "silences",
    "without_repeats",
]

QC_ONLY: dict[str, Any] = {"profiles": ["qc"]}
MIN_SILENCE_S = float(SilenceDetector.profiles["qc"]["min_duration_s"])
PEAK = 10 ** (SilenceConfig().peak_threshold_dbfs / 20)


class BlackFrames:
    """Black pictures among those the encoder is given, by the black detector's rule
    (its defaults, on the full-range picture): a dip through black's one frame, a
    film's black first frame. Runs shorter than the live minimum (3 frames) are qc's
    alone; longer ones, which no defect made, are truth at every profile."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        config = BlackConfig()
        self.level = int(config.pixel_threshold_ratio * 255)
        self.share = config.picture_black_ratio
        self.spread = config.max_spread_levels
        self.live_frames = config.min_frames
        self.run: list[int] = []
        self.events: list[TruthEvent] = []

    def add(self, index: int, luma: npt.NDArray[np.uint8], made_black: bool) -> None:
        """Picture ``index`` as encoded; ``made_black``: a black defect's, truth already."""
        full = (luma.astype(np.float32) - 16) * (255 / 219)  # the clip is limited range
        dark = full <= self.level
        black = (
            not made_black
            and np.count_nonzero(dark) / dark.size >= self.share
            and float(full[dark].std()) <= self.spread
        )
        if black:
            self.run.append(index)
        else:
            self.close()

    def close(self) -> None:
        if self.run:
            start, end = self.run[0] / self.fps, (self.run[-1] + 1) / self.fps
            details = dict(QC_ONLY) if len(self.run) < self.live_frames else {}
            self.events.append({"type": "black", "start": start, "end": end, "details": details})
            self.run = []


def silences(
    pcm: npt.NDArray[np.float32],
    rate: int,
    known: list[TruthEvent],
    lost: list[tuple[float, float]],
) -> list[TruthEvent]:
    """Runs of every channel at or under the silence detector's peak threshold, at least
    the qc minimum long, then merged as incidents are; none inside a silence the truth
    already holds (``known``) or a gap in the audio (``lost``: loss, not silence)."""
    quiet: npt.NDArray[np.bool_] = np.asarray((np.abs(pcm) <= PEAK).all(axis=0))
    change = np.flatnonzero(np.diff(quiet.astype(np.int8))) + 1
    bounds = [0, *change.tolist(), len(quiet)]
    runs = [(a / rate, b / rate) for a, b in itertools.pairwise(bounds) if quiet[a]]
    merged: list[list[float]] = []
    for start, end in runs:
        if end - start < MIN_SILENCE_S:
            continue  # a zero crossing, a quiet instant: not a silence
        if merged and start - merged[-1][1] <= MERGE_GAP_S:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    taken = [(e["start"], e["end"]) for e in known if e["type"] == "silence"] + lost
    return [
        {"type": "silence", "start": start, "end": end, "details": {"channels": "all", **QC_ONLY}}
        for start, end in merged
        if not any(start < b and a < end for a, b in taken)
    ]


def clipping(
    pcm: npt.NDArray[np.float32], rate: int, lost: list[tuple[float, float]]
) -> list[TruthEvent]:
    """Runs of clipped 10 ms windows by the clipping detector's rule (its defaults:
    ``min_samples_per_window`` samples of one channel on full scale), on the samples
    before coding, where a clipped sample is exactly 1.0; windows at most the
    detector's end hold or the merge gap apart are one run, as incidents are. None
    inside a gap in the audio (``lost``).

    Windows that touched full scale fewer times than the rule counts, away from
    those runs, are ``either_way``: the signal was driven past full scale there, and
    after lossy coding its ringing may put the count over the rule or not."""
    config = ClippingConfig()
    size = round(rate * 0.01)
    windows = pcm.shape[1] // size
    on_scale = np.abs(pcm[:, : windows * size]) >= 1.0
    per_window = on_scale.reshape(pcm.shape[0], windows, size).sum(axis=2).max(axis=0)
    hot = per_window >= config.min_samples_per_window
    join = max(config.end_hold_s, MERGE_GAP_S)
    runs = _window_runs(np.flatnonzero(hot), size, rate, join)
    touched = _window_runs(np.flatnonzero(~hot & (per_window > 0)), size, rate, join)
    events: list[TruthEvent] = [
        {"type": "clipping", "start": start, "end": end, "details": {}} for start, end in runs
    ]
    events += [
        {"type": "clipping", "start": start, "end": end, "details": {"either_way": True}}
        for start, end in touched
        if not any(start - join <= b and a <= end + join for a, b in runs)
    ]
    return [e for e in events if not any(e["start"] < b and a < e["end"] for a, b in lost)]


def _window_runs(
    indices: npt.NDArray[np.intp], size: int, rate: int, join: float
) -> list[list[float]]:
    """[start, end] of the windows of ``size`` samples at ``indices``, those at most
    ``join`` seconds apart joined."""
    spans: list[list[float]] = []
    for index in indices.tolist():
        start, end = index * size / rate, (index + 1) * size / rate
        if spans and start - spans[-1][1] <= join:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    return spans


def loudness_runs(
    pcm: npt.NDArray[np.float32], rate: int, names: tuple[str, ...], profile: str
) -> list[tuple[float, float]]:
    """Runs of short-term loudness off target, by the loudness detector's rule at
    ``profile``, on the samples before coding."""
    info = StreamInfo("source", "pcm", None, None, AudioInfo("pcm", rate, len(names), "", names))
    engine = EngineConfig(profile=profile)
    detector = LoudnessDetector(LoudnessConfig(**detector_options(engine, LoudnessDetector)), info)
    for at in range(0, pcm.shape[1], rate):
        detector.on_audio(AudioBlock(at / rate, pcm[:, at : at + rate], rate))
    detector.flush(pcm.shape[1] / rate)
    starts: dict[str, float] = {}
    out: list[tuple[float, float]] = []
    for event in detector.events:
        if event.details.get("measure") != "short_term":
            continue
        if event.phase == "start":
            starts[event.key] = event.time
        else:
            out.append((starts.pop(event.key, 0.0), event.time))
    return out


def loudness_shift(
    shift: TruthEvent, runs: dict[str, list[tuple[float, float]]]
) -> TruthEvent | None:
    """A loudness defect's truth, at the profiles whose rule it meets (``runs``: each
    profile's loudness_runs): a gain step on a film with pauses can stay off target
    for less than live's 10 s and still for qc's 3 s. None when no profile's rule
    holds."""
    a, b = shift["start"], shift["end"]
    for profile, details in (("live", {}), ("qc", QC_ONLY)):
        if any(start < b and a < end for start, end in runs[profile]):
            return {**shift, "details": {**shift["details"], **details}}
    return None


def loudness_drifts(
    qc_runs: list[tuple[float, float]], known: list[TruthEvent]
) -> list[TruthEvent]:
    """Short-term loudness off target for the qc minimum (``qc_runs``: loudness_runs
    at qc), as qc-only truth; none overlapping loudness the truth holds."""
    taken = [(e["start"], e["end"]) for e in known if e["type"] == "loudness"]
    return [
        {
            "type": "loudness",
            "start": start,
            "end": end,
            "details": {"measure": "short_term", **QC_ONLY},
        }
        for start, end in qc_runs
        if not any(start < b and a < end for a, b in taken)
    ]


def without_repeats(truth: list[TruthEvent]) -> list[TruthEvent]:
    """``truth`` less the qc-only events that overlap an event of every profile of the
    same type (a programme mixed far off target is off target at qc too)."""
    everywhere = [e for e in truth if "profiles" not in e["details"]]
    return [
        e
        for e in truth
        if "profiles" not in e["details"]
        or not any(
            o["type"] == e["type"] and o["start"] < e["end"] and e["start"] < o["end"]
            for o in everywhere
        )
    ]
