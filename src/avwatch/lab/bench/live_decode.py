"""Decoding alone, played live: the floor ``bench streams`` holds the pipeline to.

One stream decoded from start to end costs less CPU per second of media than
the same stream decoded live among many others. A live stream is read in
batches at its real-time pace, so between two batches the other streams on the
core evict its decoder's reference pictures and code from the CPU caches, and
every batch wakes a thread. That cost belongs to live decoding, not to
analysis: on the 720p bench clip, 24 to 44 decode-only streams played live
cost 40-41 CPU-ms per stream-second, one decoded in a row 34.

So the decode-only count is measured as the pipeline's is: ``streams`` paced
copies of the clip in worker processes laid out as the service lays out its
own (one per core, pinned like them, a thread per stream, one decoder thread
each, a wait of ``batch_s`` once caught up), and the trial asks whether every
stream stayed within ``max_lag_s`` of real time at full frame rate. Nothing
here analyses, queues or reads the transport stream: it demuxes and decodes,
as ``bench.decode_only`` does.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from avwatch.decode.reader import (
    configure_video_decoder,
)
from avwatch.service.workers import pin_to_cpu
from avwatch.types import STRICT_ERROR_DETECTION, ErrorDetection

__all__ = ["DecodeTrial", "decode_live_trial"]

RESULT_GRACE_S = 30.0  # beyond warm-up and measurement, for start-up and a slow machine


@dataclass
class DecodeTrial:
    streams: int
    kept_up: bool
    max_lag_s: float
    min_fps: float


@dataclass
class _Play:
    """One stream's progress, written by its thread and read once measuring ends."""

    max_lag_s: float = 0.0
    frames: int = 0
    error: str = ""


def decode_live_trial(
    clip: Path,
    streams: int,
    *,
    warmup_s: float,
    seconds: float,
    cpus: list[int],
    workers: int,
    fps: float,
    batch_s: float,
    decoder_threads: int,
    max_lag_s: float,
    error_detection: ErrorDetection = STRICT_ERROR_DETECTION,
) -> DecodeTrial:
    """Play ``streams`` copies of ``clip`` live, decoding only; did they all keep up?"""
    ctx = mp.get_context("spawn")
    pipes, processes = [], []
    decoder = (decoder_threads, error_detection)
    for index in range(workers):
        count = streams // workers + (index < streams % workers)
        if not count:
            continue
        reader, writer = ctx.Pipe(duplex=False)
        cpu = cpus[index % len(cpus)] if cpus else None
        args = (str(clip), count, warmup_s, seconds, batch_s, decoder, cpu, writer)
        process = ctx.Process(target=_worker, args=args, daemon=True)
        process.start()
        writer.close()
        pipes.append(reader)
        processes.append(process)
    plays: list[_Play] = []
    deadline = time.monotonic() + warmup_s + seconds + RESULT_GRACE_S
    try:
        for pipe in pipes:
            if pipe.poll(max(0.0, deadline - time.monotonic())):
                plays.extend(_Play(**p) for p in pipe.recv())
    except EOFError:
        pass  # a worker died: its streams are missing, and the trial fails
    finally:
        for process in processes:
            process.join(5.0)
            if process.is_alive():
                process.kill()
                process.join(1.0)
    max_lag = max((p.max_lag_s for p in plays), default=float("inf"))
    min_fps = min((p.frames / seconds for p in plays), default=0.0)
    kept_up = (
        len(plays) == streams
        and not any(p.error for p in plays)
        and max_lag <= max_lag_s
        and min_fps >= 0.9 * fps
    )
    return DecodeTrial(streams, kept_up, round(max_lag, 3), round(min_fps, 2))


def _worker(
    clip: str,
    count: int,
    warmup_s: float,
    seconds: float,
    batch_s: float,
    decoder: tuple[int, ErrorDetection],
    cpu: int | None,
    out: Connection,
) -> None:
    if cpu is not None:
        pin_to_cpu(cpu)  # as the service's workers (unpinned where refused, silently)
    stop, measuring = threading.Event(), threading.Event()
    plays = [_Play() for _ in range(count)]
    threads = [
        threading.Thread(
            target=_play,
            args=(clip, play, batch_s, decoder, stop, measuring),
            daemon=True,
        )
        for play in plays
    ]
    for thread in threads:
        thread.start()
    time.sleep(warmup_s)
    measuring.set()
    time.sleep(seconds)
    report = [dict(vars(p)) for p in plays]  # a snapshot at the window's end
    stop.set()
    for thread in threads:
        thread.join(2.0)
    out.send(report)
    out.close()


def _play(
    clip: str,
    play: _Play,
    batch_s: float,
    decoder: tuple[int, ErrorDetection],
    stop: threading.Event,
    measuring: threading.Event,
) -> None:
    """Decode ``clip`` at real-time pace: wait for each picture's moment, and then for
    a batch after it, as a monitor reads a looping file (service/monitor.py)."""
    import av

    try:
        with av.open(clip) as container:
            video = container.streams.video[0]
            configure_video_decoder(video, *decoder)  # threads, error detection
            started, first = time.time(), None
            for packet in container.demux(video, *container.streams.audio[:1]):
                frames: Any = packet.decode()
                if packet.stream is not video:
                    continue
                for frame in frames:
                    if frame.pts is None:
                        continue
                    at = float(frame.pts * frame.time_base)
                    first = at if first is None else first
                    ahead = started + (at - first) - time.time()
                    if measuring.is_set():
                        play.frames += 1
                        play.max_lag_s = max(play.max_lag_s, -ahead)
                    if ahead > 0 and stop.wait(ahead + batch_s):
                        return
                if stop.is_set():
                    return
    except Exception as exc:  # reported, and the trial fails: never a silent pass
        play.error = str(exc) or type(exc).__name__
