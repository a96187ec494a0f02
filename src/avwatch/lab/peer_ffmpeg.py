"""FFmpeg as the peer in ``avwatch eval --peer ffmpeg``: its detection filters on the
same files, their output mapped to avwatch's event types.

blackdetect → black, freezedetect → freeze, silencedetect → silence (all
channels), ebur128 short-term readings → loudness (with the loudness
detector's rule: by default more than 6 LU off -23 LUFS for 10 s), blockdetect →
corruption (frames whose blockiness stands 1.5x over the file's median, two
frames or more: blockdetect measures compression blockiness, so this is the
best use of it, and docs/media.md trap 5 says not to expect much). FFmpeg has no
filter for dropped frames, losses, clipping events or A/V offset; those types
count as missed for the peer. The filters get avwatch's minimum durations and
thresholds at the same operating point (``PeerSettings.of``), so that both are
asked the same question. The FFmpeg binary comes from the imageio-ffmpeg package.
``-copyts`` keeps PTS as they are, and times are shifted onto avwatch's
t = 0 (the first displayed video frame; docs/media.md trap 1).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avwatch.config import EngineConfig, detector_config, detector_options
from avwatch.decode.reader import MediaReader
from avwatch.detectors.base import RunTracker, load_detector
from avwatch.errors import AvwatchError
from avwatch.input.source import close_input, open_input

__all__ = ["PEER_TYPES", "ffmpeg_events"]

Event = dict[str, Any]

_BLACK = re.compile(r"black_start:([\d.]+) black_end:([\d.]+)")
_FREEZE = re.compile(r"freezedetect\.freeze_(start|end): ([\d.]+)")
_SILENCE = re.compile(r"silence_(start|end): (-?[\d.]+)")
_BLOCK = re.compile(r"pts_time:([\d.]+)\s*\n[^\n]*lavfi\.block=([\d.]+)")
BLOCK_OVER_MEDIAN = 1.5
_EBUR128 = re.compile(r"t: ([\d.]+)\s+TARGET:\S+ LUFS\s+M:\s*(-?[\d.]+) S:\s*(-?[\d.]+)")
# The event types its filters are mapped to: what it watched on every file.
PEER_TYPES = frozenset({"black", "freeze", "silence", "loudness", "corruption"})


@dataclass(frozen=True)
class PeerSettings:
    black_s: float = 0.06
    freeze_s: float = 2.0
    silence_s: float = 2.0
    silence_db: float = -60.0
    target_lufs: float = -23.0
    tolerance_lu: float = 6.0
    loudness_s: float = 10.0

    @classmethod
    def of(cls, config: EngineConfig) -> PeerSettings:
        """avwatch's minimum durations and thresholds in ``config`` (its profile too)."""

        def option(key: str, name: str) -> Any:
            detector = load_detector(key)
            return getattr(detector_config(detector, detector_options(config, detector)), name)

        target = option("loudness", "target_lufs")
        return cls(
            black_s=option("black", "min_duration_s"),
            freeze_s=option("freeze", "min_duration_s"),
            silence_s=option("silence", "min_duration_s"),
            silence_db=option("silence", "peak_threshold_dbfs"),
            target_lufs=cls.target_lufs if target is None else target,
            tolerance_lu=option("loudness", "short_term_tolerance_lu"),
            loudness_s=option("loudness", "min_duration_s"),
        )


def _ffmpeg() -> str:
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise AvwatchError("--peer ffmpeg needs the imageio-ffmpeg package") from exc
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _probe(path: Path) -> tuple[float, float, bool, bool]:
    """Absolute PTS seconds of avwatch's t = 0, the duration, and whether there is
    video / audio."""
    container = open_input(str(path))
    try:
        reader = MediaReader(container, str(path))
        for _ in reader.samples():
            if reader.t0 is not None:
                break
        duration = reader.info.duration_s or 0.0
        return reader.t0 or 0.0, duration, reader.video is not None, reader.audio is not None
    finally:
        close_input(container)


def ffmpeg_events(path: Path, settings: PeerSettings | None = None) -> list[Event]:
    s = settings or PeerSettings()
    t0, duration, has_video, has_audio = _probe(path)
    chains, maps = [], []
    if has_video:
        chains.append(
            f"[0:v:0]blackdetect=d={s.black_s:g}:pix_th=0.10,freezedetect=n=-60dB:d={s.freeze_s:g},"
            "blockdetect,metadata=mode=print:key=lavfi.block[v]"
        )
        maps += ["-map", "[v]"]
    if has_audio:
        chains.append(
            f"[0:a:0]silencedetect=n={s.silence_db:g}dB:d={s.silence_s:g},"
            "ebur128=framelog=verbose[a]"
        )
        maps += ["-map", "[a]"]
    command = [
        _ffmpeg(),
        "-hide_banner",
        "-nostats",
        "-v",
        "verbose",
        "-copyts",
        "-i",
        str(path),
        "-filter_complex",
        ";".join(chains),
        *maps,
        "-f",
        "null",
        "-",
    ]
    log = subprocess.run(command, capture_output=True, text=True, timeout=3600).stderr
    events: list[Event] = []

    def add(type_: str, start: float, end: float) -> None:
        events.append({"type": type_, "start": start - t0, "end": end - t0, "details": {}})

    for start, end in _BLACK.findall(log):
        add("black", float(start), float(end))
    for kind, pattern in (("freeze", _FREEZE), ("silence", _SILENCE)):
        opened: float | None = None
        for phase, value in pattern.findall(log):
            if phase == "start":
                opened = float(value)
            elif opened is not None:
                add(kind, opened, float(value))
                opened = None
        if opened is not None:  # still open at the end of the file
            add(kind, opened, t0 + duration)
    events += _loudness(log, s.target_lufs, s.tolerance_lu, s.loudness_s)
    events += [{**e, "start": e["start"] - t0, "end": e["end"] - t0} for e in _blocky(log)]
    return sorted(events, key=lambda e: (e["start"], e["type"]))


def _blocky(log: str) -> list[Event]:
    """blockdetect's per-frame readings: runs of frames far blockier than usual."""
    frames = [(float(t), float(v)) for t, v in _BLOCK.findall(log)]
    if not frames:
        return []
    typical = sorted(v for _, v in frames)[len(frames) // 2]
    step = (frames[-1][0] - frames[0][0]) / max(1, len(frames) - 1)
    run = RunTracker(2 * step - 1e-6)
    changes: list[tuple[str, float]] = []
    for t, value in frames:
        changes += run.update(value > BLOCK_OVER_MEDIAN * typical, t, t + step)
    return _intervals("corruption", changes + list(run.flush()))


def _loudness(log: str, target_lufs: float, tolerance_lu: float, min_s: float) -> list[Event]:
    """ebur128's short-term readings through the same rule as avwatch's detector.

    ebur128's ``t`` counts from the first audio sample, which avwatch places at ~0.
    """
    run = RunTracker(min_s)
    changes: list[tuple[str, float]] = []
    for t, _momentary, short_term in _EBUR128.findall(log):
        end, level = float(t), float(short_term)
        off = level > -70 and abs(level - target_lufs) > tolerance_lu
        changes += run.update(off, end - 0.1, end)
    return _intervals("loudness", changes + list(run.flush()))


def _intervals(type_: str, changes: list[tuple[str, float]]) -> list[Event]:
    """A ``RunTracker``'s start/end changes as events of ``type_``."""
    starts = [when for phase, when in changes if phase == "start"]
    ends = [when for phase, when in changes if phase == "end"]
    return [
        {"type": type_, "start": a, "end": b, "details": {}}
        for a, b in zip(starts, ends, strict=True)
    ]
