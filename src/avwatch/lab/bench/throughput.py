"""Throughput benchmark: what the pipeline costs on top of decoding.

Decoding is the floor (docs/architecture.md, "Cost"). ``throughput`` decodes a file three
ways — decode only; decode plus the analysis samples (small grey picture,
float audio); the full pipeline with every detector — and reports frames per
CPU-second (user + system time of the process, all threads, best of ``repeat``
runs per stage), so the numbers do not depend on how many cores are free.

On a shared machine (a VM with busy neighbours) one run's CPU time varies by
several per cent, and the best of each stage may come from different moments. So the ratio
is also given paired: decode-only and full pipeline run back to back in each
round, and the median of the rounds' ratios is reported beside the best-of one.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from avwatch.analysis.check import check, make_reader
from avwatch.config import EngineConfig
from avwatch.decode.reader import (
    configure_video_decoder,
)
from avwatch.detectors.base import select
from avwatch.input.source import close_input, open_input
from avwatch.input.tap import ANALYSIS_CHUNK, looks_like_ts
from avwatch.transport.analyser import TsAnalyzer
from avwatch.types import STRICT_ERROR_DETECTION, ErrorDetection, VideoFrame

__all__ = ["ThroughputResult", "throughput"]


@dataclass
class ThroughputResult:
    source: str
    frames: int
    decode_fps_cpu: float
    analysis_fps_cpu: float
    pipeline_fps_cpu: float
    detector_share: dict[str, float]
    ts: dict[str, float] | None = None
    round_ratios: list[float] = field(default_factory=list)
    """Each round's decode-only CPU over its full-pipeline CPU (run back to back)."""
    cpu_split_us: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Stage -> (main thread, other threads) µs of CPU a picture, in its best run. The
    main thread demuxes, decodes audio and analyses; the others are the video decoder's."""

    @property
    def ratio(self) -> float:
        return self.pipeline_fps_cpu / self.decode_fps_cpu

    @property
    def paired_ratio(self) -> float:
        """The median of the rounds' ratios: each round's two runs saw the same machine."""
        return statistics.median(self.round_ratios) if self.round_ratios else self.ratio

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "frames": self.frames,
            "decode_only_fps_per_cpu_s": round(self.decode_fps_cpu, 1),
            "decode_and_analysis_samples_fps_per_cpu_s": round(self.analysis_fps_cpu, 1),
            "full_pipeline_fps_per_cpu_s": round(self.pipeline_fps_cpu, 1),
            "pipeline_to_decode_ratio": round(self.ratio, 3),
            "pipeline_to_decode_paired_ratio": round(self.paired_ratio, 3),
            "round_ratios": [round(r, 3) for r in self.round_ratios],
            "cpu_us_per_picture": {
                stage: {"main_thread": round(main, 1), "other_threads": round(other, 1)}
                for stage, (main, other) in self.cpu_split_us.items()
            },
            "detector_share_of_pipeline_cpu": {
                k: round(v, 4) for k, v in self.detector_share.items()
            },
            "ts_analysis": self.ts,
        }


def decode_only(
    path: str, threads: int = 0, error_detection: ErrorDetection = STRICT_ERROR_DETECTION
) -> tuple[int, float]:
    """Decoding alone, the video decoder set up as the pipeline's. Timed from opening
    the file, as ``check`` times itself."""
    cpu0 = time.process_time()
    container = open_input(path)
    try:
        streams = [*container.streams.video[:1], *container.streams.audio[:1]]
        if container.streams.video:
            configure_video_decoder(container.streams.video[0], threads, error_detection)
        frames = 0
        for packet in container.demux(streams):
            decoded = packet.decode()
            if packet.stream.type == "video":
                frames += len(decoded)
        return frames, time.process_time() - cpu0
    finally:
        close_input(container)


def _analysis_samples(path: str, config: EngineConfig) -> tuple[int, float]:
    cpu0 = time.process_time()
    container = open_input(path)
    try:
        reader = make_reader(container, path, config)
        frames = 0
        for sample in reader.samples():
            frames += isinstance(sample, VideoFrame)
        return frames, time.process_time() - cpu0
    finally:
        close_input(container)


def ts_analysis(path: str, chunk: int = ANALYSIS_CHUNK) -> dict[str, float] | None:
    """TR 101 290 analyser cost on the file's bytes, fed in ``chunk``-sized pieces (as
    the TS tap hands them on):
    packets per CPU-second, and the share of one core a 20 Mb/s stream would take."""
    with open(path, "rb") as f:
        data = f.read()
    if not looks_like_ts(data[: 3 * 188]):
        return None
    analyzer = TsAnalyzer()
    cpu0 = time.process_time()
    for pos in range(0, len(data), chunk):
        analyzer.feed(data[pos : pos + chunk])
    cpu = max(time.process_time() - cpu0, 1e-9)
    packets_per_cpu_s = analyzer.packet_index / cpu
    return {
        "ts_packets_per_cpu_s": round(packets_per_cpu_s),
        "ts_core_share_at_20mbps": round(20e6 / 8 / 188 / packets_per_cpu_s, 5),
    }


def throughput(
    path: str,
    config: EngineConfig | None = None,
    detectors: Iterable[str] | None = None,
    repeat: int = 3,
) -> ThroughputResult:
    """Each stage runs ``repeat`` times and keeps its best: other load only ever slows a
    run. The stages take turns, so a slow spell of the machine hits all of them alike."""
    config = config or EngineConfig()
    keys = list(detectors) if detectors is not None else None
    select(keys)  # import the detectors (and scipy) before any clock starts
    decode_cpu = analysis_cpu = math.inf
    frames, result = 0, None
    round_ratios = []
    split: dict[str, tuple[float, float]] = {}
    for _ in range(repeat):
        analysis_cpu = min(analysis_cpu, _analysis_samples(path, config)[1])
        main0 = time.thread_time()
        frames, cpu = decode_only(path, config.decoder_threads, config.decoder_error_detection)
        if frames == 0:
            raise ValueError(f"{path}: no video frames to measure")
        if cpu < decode_cpu:
            decode_cpu = cpu
            split["decode_only"] = _split(time.thread_time() - main0, cpu, frames)
        main0 = time.thread_time()
        run = check(path, config, keys)
        main = time.thread_time() - main0
        round_ratios.append((cpu / frames) / (run.cpu_s / max(run.video_frames, 1)))
        if result is None or run.cpu_s < result.cpu_s:
            result = run
            split["full_pipeline"] = _split(main, run.cpu_s, max(run.video_frames, 1))
    assert result is not None
    # A second, profiled run for each detector's share: timing every call costs a little,
    # so it is kept out of the throughput figure above.
    profiled = check(path, config, keys, profile=True)
    share = {k: v / profiled.cpu_s for k, v in sorted(profiled.detector_seconds.items())}
    return ThroughputResult(
        source=path,
        frames=frames,
        decode_fps_cpu=frames / decode_cpu,
        analysis_fps_cpu=frames / analysis_cpu,
        pipeline_fps_cpu=result.video_frames / result.cpu_s,
        detector_share=share,
        ts=ts_analysis(path),
        round_ratios=round_ratios,
        cpu_split_us=split,
    )


def _split(main_cpu: float, process_cpu: float, frames: int) -> tuple[float, float]:
    """(main thread, other threads) µs a picture. The other threads' CPU does not move
    with the analysis, so the split shows the pipeline's own cost through the VM's noise."""
    main = min(main_cpu, process_cpu)
    return main / frames * 1e6, (process_cpu - main) / frames * 1e6
