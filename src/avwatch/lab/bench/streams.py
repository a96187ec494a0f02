"""``avwatch bench streams``: how many live streams this machine keeps up with.

Decoding is the floor, so the run first measures, on one clip, the CPU time
decoding alone costs per second of media, and what the full pipeline costs
(every detector, one decoder thread per stream as the service runs it): each
gives the streams the machine's cores could sustain. Then it checks the
pipeline's figure live: that many copies of the clip, played at real time
through the service's own worker processes and monitors (read in batches,
as the service reads live inputs), must all stay within ``MAX_LAG_S`` of real
time at full frame rate with nothing dropped (a count that falls behind gets a
second try, as the CPU figures are the best of several runs); about 12% more or
fewer are tried until one count keeps up and one does not, then the gap is
halved down to one stream. Memory per stream is the workers' resident memory
over what they use idle, divided by the streams.

Decoding alone is then found live the same way (bench/live_decode.py): paced
copies of the clip in the same process layout, decoding only. Streams decoded
live among many cost more CPU each than one decoded in a row, analysed or not,
so the ratio the run reports is live count to live count; the ratio to the
decode-only count by CPU is printed beside it.

With ``analysis`` other than full, every figure is that tier's (``check`` and the
monitors run it); a patrolled stream is measured in patrol alone (no escalation,
no rotation slices: what those cost is a full stream per slot, which ``plan``
adds), and the decode-only live search is left out: it is the floor of full.

The clip is encoded as broadcast encoders do (``preset``, by default x264's
veryfast: CABAC, deblocking, B-frames where they pay): x264's ultrafast writes
none of them and is a third cheaper to decode, which flatters every count
and hides what ``fast`` saves.

The clip outlasts a trial, so no stream reaches its end while it is measured: a
looping file is opened anew at each end (probing, a new decoder, new detectors),
which a live stream never is, and with a short clip that costs a monitor
measurably more CPU than the steady state being measured.
"""

from __future__ import annotations

import math
import os
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import av

from avwatch.analysis.check import check
from avwatch.config import EngineConfig, Escalation
from avwatch.decode.thumbnails import ThumbnailMaker
from avwatch.errors import ConfigError
from avwatch.lab.bench.live_decode import DecodeTrial, decode_live_trial
from avwatch.lab.bench.ray_backend import (
    RayOverhead,
    ray_cluster,
    ray_pool,
    ray_processes,
    sample_processes,
)
from avwatch.lab.bench.throughput import decode_only
from avwatch.lab.scratch import partial_path
from avwatch.lab.synth import ClipSpec, make_clip
from avwatch.service.config import ServiceConfig, StreamSpec
from avwatch.service.messages import StatusReport, StreamStatus, WorkerMessage
from avwatch.service.monitor import STATUS_EVERY_S
from avwatch.service.workers import WorkerPool, Workers, cpus_to_pin
from avwatch.types import Analysis

__all__ = [
    "RESOLUTIONS",
    "Progress",
    "StreamsResult",
    "Trial",
    "bench_clip",
    "bench_streams",
    "most_that_pass",
    "plan_cores",
]

# name -> (width, height, fps, interlaced)
RESOLUTIONS: dict[str, tuple[int, int, Fraction, bool]] = {
    "1080p": (1920, 1080, Fraction(30), False),
    "720p": (1280, 720, Fraction(50), False),
    "576i": (720, 576, Fraction(25), True),
}
MAX_LAG_S = 1.0
WARMUP_S = 4.0
LONGEST_TRIAL_S = 20.0  # measured seconds; the streams are assigned, warmed up, measured...
CLIP_S = 30.0  # ...and none of them has reached the clip's end (see above)
# The CPU figures are the best of this many runs: other load only ever slows a run.
REPEAT = 5
# For the same reason a count that falls behind is tried again before it counts as
# too many (on a shared VM one slow spell decides a single 15 s trial).
LIVE_TRIES = 2
DEFAULT_PRESET = "veryfast"


@dataclass
class Trial:
    streams: int
    kept_up: bool
    max_lag_s: float
    dropped_samples: int
    min_fps: float
    rss_mb_per_stream: float | None
    head_bytes_per_stream_s: float = 0.0
    """What the monitors sent the head (pickled), per stream-second: with Ray across
    machines, what crosses the network."""
    ray: RayOverhead | None = None
    """With ``--backend ray``: Ray's own processes over the measured window."""


@dataclass
class StreamsResult:
    resolution: str
    analysis: Analysis
    preset: str
    cores: int
    decode_only_streams: float
    pipeline_streams_by_cpu: float
    live_streams: int
    decode_only_live_streams: int = 0
    thumbnail_ms: float = 0.0
    """One colour thumbnail of the clip's pictures (the tile's, every STATUS_EVERY_S)."""
    thumbnail_share: float = 0.0
    """What those thumbnails cost, as a share of a stream's full-pipeline CPU."""
    backend: str = "local"
    """Where the live trials' monitors ran: worker processes, or Ray actors."""
    trials: list[Trial] = field(default_factory=list)
    decode_trials: list[DecodeTrial] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Streams kept up live with every detector, to streams kept up live decoding only."""
        live, floor = self.live_streams, self.decode_only_live_streams
        return live / floor if floor else 0.0

    @property
    def ratio_by_cpu(self) -> float:
        """The same live count, to what one stream's decoding CPU says the cores could do."""
        return self.live_streams / self.decode_only_streams if self.decode_only_streams else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "live_to_decode_only_live_ratio": round(self.ratio, 3),
            "live_to_decode_only_by_cpu_ratio": round(self.ratio_by_cpu, 3),
        }


def tier_engine(analysis: Analysis) -> EngineConfig:
    """The engine a bench stream runs with: the service's, at ``analysis``; patrol alone."""
    engine = ServiceConfig().engine  # as the service runs streams: one decoder thread each
    alone = Escalation(escalate_s=0, rotate_every_s=0)
    return engine.model_copy(update={"analysis": analysis, "escalation": alone})


def bench_clip(resolution: str, cache: Path, preset: str = DEFAULT_PRESET) -> Path:
    """A clip with film grain (so decoding costs what real pictures cost), cached."""
    width, height, fps, interlaced = RESOLUTIONS[resolution]
    path = cache / f"bench-{resolution}-{CLIP_S:g}s-{preset}.ts"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = partial_path(path)
        spec = ClipSpec(
            duration_s=CLIP_S,
            width=width,
            height=height,
            fps=fps,
            interlaced=interlaced,
            noise_levels=4.0,
            preset=preset,
        )
        make_clip(partial, spec)
        partial.rename(path)
    return path


def thumbnail_cost(clip: Path, pictures: int = 50) -> float:
    """CPU seconds for one colour thumbnail of the clip's decoded pictures (best of
    three rounds over ``pictures`` of them)."""
    with av.open(str(clip)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame)
            if len(frames) == pictures:
                break
    maker = ThumbnailMaker(frames[0].width / frames[0].height)
    best = math.inf
    for _ in range(3):
        began = time.process_time()
        for frame in frames:
            maker.make(frame)
        best = min(best, (time.process_time() - began) / len(frames))
    return best


def _rss_mb(pid: int | None) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def live_trial(
    clip: Path,
    streams: int,
    seconds: float,
    workers: int,
    fps: float,
    analysis: Analysis = "full",
    backend: str = "local",
) -> Trial:
    """Run ``streams`` looping copies of ``clip`` through worker processes (or Ray actors,
    ``backend`` ray); did they keep up?"""
    lock = threading.Lock()
    window: dict[str, list[StreamStatus]] = {}
    measuring = threading.Event()
    sent = 0

    def collect(message: WorkerMessage) -> None:
        nonlocal sent
        if not measuring.is_set():
            return
        with lock:
            sent += len(pickle.dumps(message))
            if isinstance(message, StatusReport):
                window.setdefault(message.stream, []).append(message.status)

    service = ServiceConfig()
    engine = tier_engine(analysis)
    pool: Workers
    if backend == "ray":
        pool = ray_pool(workers, collect)
    else:
        pool = WorkerPool(workers, collect, pin=service.pin_workers)
        pool.start()
    overhead = None
    try:
        time.sleep(2.0)  # workers up and idle
        idle = [_rss_mb(w["pid"]) for w in pool.describe()]
        for i in range(streams):
            spec = StreamSpec(id=f"s{i}", url=str(clip), loop=True)
            pool.assign(spec.id, spec.model_dump(mode="json"), engine.model_dump(mode="json"))
        time.sleep(WARMUP_S)
        theirs = ray_processes({w["pid"] for w in pool.describe()}) if backend == "ray" else []
        cpu_before, _ = sample_processes(theirs)
        measuring.set()
        time.sleep(seconds)
        cpu_after, ray_rss = sample_processes(theirs)
        if theirs:
            share = (cpu_after - cpu_before) / seconds
            overhead = RayOverhead(len(theirs), round(share, 4), round(ray_rss, 1))
        busy = [_rss_mb(w["pid"]) for w in pool.describe()]
    finally:
        pool.stop()
    with lock:
        reports = {k: v for k, v in window.items() if v}
    lags = [s.lag_s for rs in reports.values() for s in rs]
    # A status's fps covers the 2 s before it; the first one of the window may include
    # start-up, so each stream's steady rate is its median report. A patrolled stream
    # decodes its keyframes only: its pace is judged by its lag alone.
    fps_seen = [sorted(s.fps for s in rs)[len(rs) // 2] for rs in reports.values() if rs]
    if analysis == "patrol":
        fps_seen = [fps for _ in fps_seen]
    # Dropped within the window: start-up (probing, the first GOP) is not the steady state.
    dropped = sum(rs[-1].dropped_samples - rs[0].dropped_samples for rs in reports.values())
    rss = None
    if None not in idle and None not in busy:
        rss = (sum(b for b in busy if b) - sum(i for i in idle if i)) / streams
    max_lag = max(lags, default=math.inf)
    min_fps = min(fps_seen, default=0.0)
    kept_up = (
        len(reports) == streams and max_lag <= MAX_LAG_S and dropped == 0 and min_fps >= 0.9 * fps
    )
    per_stream_s = round(sent / streams / seconds, 1)
    return Trial(
        streams, kept_up, round(max_lag, 3), dropped, round(min_fps, 2), rss, per_stream_s, overhead
    )


def plan_cores(
    streams: int, mix: dict[Analysis, float], per_core: dict[Analysis, float], full_slots: int
) -> dict[str, Any]:
    """Cores for ``streams`` streams, ``mix`` the share at each tier, from the live streams
    per core each tier kept up with. Patrolled streams need their worker's full slots
    (escalations, rotation slices) on top: each slot is a full stream's CPU less the
    patrolled stream's it replaces; one worker per core."""
    unknown = [tier for tier, share in mix.items() if share and not per_core.get(tier)]
    if unknown:
        raise ConfigError(f"no live figure for {', '.join(unknown)}: bench those tiers too")
    need = {tier: streams * share / per_core[tier] for tier, share in mix.items() if share}
    cores = sum(need.values())
    patrol = need.get("patrol", 0.0)
    if patrol and full_slots:
        slot = 1 / per_core["full"] - 1 / per_core["patrol"] if per_core.get("full") else None
        if slot is None:
            raise ConfigError("full slots of patrolled streams need the full tier's figure")
        # Slots per core eat into what a core has for patrol: k cores hold k * slots.
        room = 1 - full_slots * slot
        if room <= 0:
            raise ConfigError(f"{full_slots} full slots fill a core: fewer slots per worker")
        cores += patrol / room - patrol
    return {
        "streams": streams,
        "mix": mix,
        "full_slots_per_core": full_slots,
        "cores": math.ceil(cores - 1e-9),
        "cores_exact": round(cores, 2),
        "by_tier": {tier: round(c, 2) for tier, c in need.items()},
    }


def most_that_pass(passes: Callable[[int], bool], start: int) -> int:
    """The largest count that ``passes`` (0 if not even one does), for a test that
    passes up to some count and fails above it: steps of ~12% from ``start`` until
    one count passes and one fails, then the gap between them halved down to one."""
    n, passed, failed = start, 0, None
    while True:
        if passes(n):
            passed = n
        else:
            failed = n
        if failed is None:
            n += max(1, n // 8)
        elif passed == 0:
            if n == 1:
                return 0
            n -= max(1, n // 8)
        elif failed - passed > 1:
            n = (passed + failed) // 2
        else:
            return passed


T = TypeVar("T", Trial, DecodeTrial)

# What a run has found so far, told as it goes (a run takes minutes): the result once
# its CPU figures are in, then each trial as it ends.
Progress = Callable[[StreamsResult | Trial | DecodeTrial], None]


def bench_streams(
    resolution: str,
    cache: Path,
    *,
    seconds: float = 15.0,
    workers: int | None = None,
    progress: Progress | None = None,
    analysis: Analysis = "full",
    preset: str = DEFAULT_PRESET,
    backend: str = "local",
) -> StreamsResult:
    """``backend`` ray: the live trials' monitors run as actors of a one-node Ray
    cluster started here, and the decode-only live search (a local floor) is left out."""
    tell = progress or (lambda _: None)
    if not 0 < seconds <= LONGEST_TRIAL_S:
        raise ConfigError(
            f"--seconds {seconds:g}: a live trial measures more than 0 and at most "
            f"{LONGEST_TRIAL_S:g} s, so that no stream reaches the end of the {CLIP_S:g} s clip"
        )
    cores = os.cpu_count() or 1
    workers = workers or cores
    clip = bench_clip(resolution, cache, preset)
    fps = float(RESOLUTIONS[resolution][2])
    service = ServiceConfig()
    engine = tier_engine(analysis)
    _, decode_cpu = min(
        (decode_only(str(clip), threads=1) for _ in range(REPEAT)), key=lambda r: r[1]
    )
    pipeline_cpu = min(check(str(clip), engine).cpu_s for _ in range(REPEAT))
    decode_streams = cores * CLIP_S / decode_cpu
    pipeline_streams = cores * CLIP_S / pipeline_cpu
    thumbnail_s = thumbnail_cost(clip)
    result = StreamsResult(
        resolution,
        analysis,
        preset,
        cores,
        round(decode_streams, 1),
        round(pipeline_streams, 1),
        live_streams=0,
        thumbnail_ms=round(thumbnail_s * 1000, 3),
        thumbnail_share=round(thumbnail_s / STATUS_EVERY_S / (pipeline_cpu / CLIP_S), 5),
        backend=backend,
    )
    tell(result)

    def tried(trial: Callable[[int], T], into: list[T]) -> Callable[[int], bool]:
        """Does ``n`` keep up, in one of LIVE_TRIES trials? Each is kept and told."""

        def passes(n: int) -> bool:
            for _ in range(LIVE_TRIES):
                found = trial(n)
                into.append(found)
                tell(found)
                if found.kept_up:
                    return True
            return False

        return passes

    # Live: from the CPU figure, up or down to the most streams that keep up.
    pipeline_kept_up = tried(
        lambda n: live_trial(clip, n, seconds, workers, fps, analysis, backend), result.trials
    )
    shutdown = ray_cluster(cores) if backend == "ray" else None
    try:
        start = max(1, math.floor(pipeline_streams))
        result.live_streams = most_that_pass(pipeline_kept_up, start)
    finally:
        if shutdown is not None:
            shutdown()
    if analysis != "full" or backend != "local":
        return result  # decoding everything is full's floor, not this tier's

    # Decoding alone, live, in the same layout. It starts where the pipeline's live/CPU
    # proportion points (any start finds the same count; a near one finds it sooner).
    cpus = cpus_to_pin(workers) if service.pin_workers else []
    batch_s = StreamSpec(id="bench", url=str(clip), loop=True).batch_s  # as live_trial's
    decode_kept_up = tried(
        lambda n: decode_live_trial(
            clip,
            n,
            warmup_s=WARMUP_S,
            seconds=seconds,
            cpus=cpus,
            workers=workers,
            fps=fps,
            batch_s=batch_s,
            decoder_threads=engine.decoder_threads,
            max_lag_s=MAX_LAG_S,
            error_detection=engine.decoder_error_detection,
        ),
        result.decode_trials,
    )
    live_share = result.live_streams / pipeline_streams if result.live_streams else 1.0
    start = max(1, math.floor(decode_streams * live_share))
    result.decode_only_live_streams = most_that_pass(decode_kept_up, start)
    return result
