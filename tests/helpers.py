"""Helpers the tests share: run a check, pick incidents, compare with truth, loopback I/O.

A plain module (imported as ``helpers``), not conftest: conftest holds fixtures only.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

from avwatch.analysis.check import CheckResult, check
from avwatch.config import EngineConfig
from avwatch.types import Incident

# Screenshots and other files a test keeps for people to look at.
ARTIFACTS = Path(os.environ.get("AVWATCH_ARTIFACTS", ".cache/artifacts"))

MakeClip = Callable[..., tuple[Path, list[dict[str, Any]]]]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(path: Path, keys: Iterable[str] | None = None, **config: Any) -> CheckResult:
    """Check ``path`` with detectors ``keys``; ``config`` are EngineConfig fields."""
    return check(str(path), EngineConfig(**config), keys)


def of_type(result: CheckResult, type_: str) -> list[Incident]:
    return [i for i in result.incidents if i.type == type_]


def assert_matches(
    found: list[Incident], truth: list[dict[str, Any]], type_: str, tolerance_s: float
) -> None:
    """One found incident per truth event of ``type_``, start and end within tolerance."""
    expected = [t for t in truth if t["type"] == type_]
    got = [(round(i.start, 3), None if i.end is None else round(i.end, 3)) for i in found]
    assert len(found) == len(expected), f"{type_}: expected {expected}, found {got}"
    for incident, event in zip(sorted(found, key=lambda i: i.start), expected, strict=True):
        assert incident.end is not None
        assert abs(incident.start - event["start"]) <= tolerance_s, (type_, got, event)
        assert abs(incident.end - event["end"]) <= tolerance_s, (type_, got, event)


def send_udp(
    data: bytes, port: int, stop: threading.Event, seconds_per_loop: float, loops: int = 1000
) -> None:
    """Send the TS in 7-packet datagrams at about real time, ``loops`` times or until stopped."""
    datagrams = [data[i : i + 1316] for i in range(0, len(data), 1316)]
    pause = seconds_per_loop / len(datagrams)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        deadline = time.monotonic() + 60  # stops by itself whatever happens
        for _ in range(loops):
            if stop.is_set() or time.monotonic() > deadline:
                return
            for datagram in datagrams:
                if stop.is_set():
                    return
                sock.sendto(datagram, ("127.0.0.1", port))
                time.sleep(pause)


RED, BLACK, BLUE = (200, 30, 30), (16, 16, 16), (30, 30, 200)


def colour_clip(
    path: Path,
    *,
    seconds: float = 6.0,
    black: tuple[float, float] | None = (2.0, 4.4),
    right_silent_from: float = 1.0,
) -> None:
    """A TS in colour, which the lab's grey pictures are not: red, then blue from
    4.4 s, black over ``black``; a 440 Hz tone whose level swells and falls (0.7 Hz)
    on both channels, the right one silent from ``right_silent_from``."""
    import av
    import numpy as np

    rate, fps = 48_000, 25
    with av.open(str(path), "w", format="mpegts") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 320, 180, "yuv420p"
        audio = out.add_stream("aac", rate=rate, layout="stereo")
        for i in range(round(seconds * fps)):
            t = i / fps
            dark = black is not None and black[0] <= t < black[1]
            colour = BLACK if dark else RED if t < 4.4 else BLUE
            rgb = np.empty((180, 320, 3), np.uint8)
            rgb[:] = colour
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        n = 1024
        for start in range(0, round(seconds * rate), n):
            t = (start + np.arange(n)) / rate
            swell = 0.15 * (1 + 0.8 * np.sin(2 * np.pi * 0.7 * t))
            left = swell * np.sin(2 * np.pi * 440 * t)
            right = np.where(t < right_silent_from, left, 0.0)
            pcm = np.stack([left, right]).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
