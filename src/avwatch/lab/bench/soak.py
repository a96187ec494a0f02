"""``avwatch bench soak``: the service left running for hours, as in production, with
defects, input cuts and worker kills on a schedule; does it leak, and does it
miss anything?

The streams are the demo channels (synthetic clips with defects at known
places, played over UDP on 127.0.0.1 in seamless loops), as many copies as
fill about 80% of the machine by the pipeline's measured CPU cost. The
service is the real one: worker processes, an SQLite file, a webhook receiver
on loopback. Every ``cut_every_s`` one stream's sender goes quiet for
``cut_s`` (an input cut); every ``kill_every_s`` one worker is SIGKILLed.

What it reports:

- memory and open files of the service and of each worker over time, and the
  slope of resident memory per hour (fitted after a warm-up; for workers, per
  process lifetime, as a killed worker starts afresh);
- incidents expected vs found: every defect of every pass each sender played,
  matched by type to an incident of its stream that started within
  ``MATCH_S`` of it, leaving out passes that a cut or a kill overlapped (the
  stream was rightly blind or reconnecting then); incidents that match no
  defect at all are counted as unexpected;
- an ``input_loss`` incident for each cut, how long each killed worker's
  streams took to report again, and alerts written vs delivered.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import statistics
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from avwatch.errors import ConfigError
from avwatch.lab.corpus import sync_truth
from avwatch.lab.demo import CHANNELS, CLIP_S, UdpSender
from avwatch.lab.scratch import partial_path
from avwatch.lab.synth import ClipSpec, make_clip
from avwatch.lab.truth import TruthEvent, at_profile
from avwatch.service.config import ServiceConfig, StreamSpec
from avwatch.service.core import Service
from avwatch.service.store import IncidentRow, OutboxRow

__all__ = ["SoakPlan", "SoakResult", "soak", "soak_clips"]

LOAD_SHARE = 0.8  # of the machine's capacity by the pipeline's CPU cost
CLIP_SIZE = (480, 270)
MATCH_S = 5.0  # an incident this close to a defect's start (wall clock) is that defect
WARMUP_S = 20.0  # a stream's first seconds: workers start, inputs are probed
BLIND_AFTER_KILL_S = 25.0  # a killed worker's streams: restart, imports, probing
BLIND_AROUND_CUT_S = 5.0  # before and after a cut: buffered data, reconnecting
PROGRAMME_CHECKS = ("integrated", "true_peak")  # loudness keys of a whole session's checks
SETTLE_S = 10.0
# Memory is fitted from here on: the service keeps ten minutes of signals per stream
# (service/signals.py), so its memory rightly grows for the first ten.
SLOPE_FROM_S = 15 * 60.0
CALIBRATION_STREAMS = 8
CALIBRATION_WARMUP_S = 10.0
CALIBRATION_S = 20.0
CALIBRATION_ROUNDS = 2  # re-measured at the count chosen, at most this often
MONITOR_TYPES = {"input_loss", "monitor_overload", "monitor_failure"}
MEMORY_GROWTH_LINES = 15


@dataclass
class SoakPlan:
    hours: float
    streams: int | None = None  # default: LOAD_SHARE of the capacity
    cut_every_s: float = 300.0
    cut_s: float = 8.0
    kill_every_s: float = 600.0
    sample_every_s: float = 30.0
    workers: int | None = None
    trace_memory: bool = False  # where the service process's Python allocations grew


@dataclass
class Sample:
    at_s: float
    service_rss_mb: float
    service_fds: int
    workers: dict[int, tuple[float, int]]  # pid -> (resident MB, open files)
    busy: float = 0.0  # share of all the machine's cores busy since the last sample


@dataclass
class SoakResult:
    hours: float  # as run: less than planned when stopped early
    streams: int
    workers: int
    capacity_streams: float | None  # measured live, unless the streams were given
    samples: list[Sample] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)  # type -> defects played
    found: dict[str, int] = field(default_factory=dict)  # type -> of them reported
    unexpected: dict[str, int] = field(default_factory=dict)  # "type on channel" -> incidents
    cuts: int = 0
    cuts_reported: int = 0
    cuts_left_out: int = 0  # their worker was killed during the cut: nobody watched
    # Loudness checks over a whole session (integrated, true peak), made when a
    # stream's session ends (a cut, the soak's end): true of the clip, not its defects.
    programme_checks: dict[str, int] = field(default_factory=dict)  # "measure on channel"
    kills: int = 0
    worker_restarts: int = 0
    recovery_s: list[float] = field(default_factory=list)
    alerts_written: int = 0
    alerts_delivered: int = 0
    service_rss_slope_mb_h: float = 0.0
    worker_rss_slope_mb_h: float = 0.0  # mean over worker lifetimes, per worker
    rss_slope_mb_per_stream_hour: float = 0.0
    fds_first_last: tuple[int, int] = (0, 0)
    stopped_early: bool = False  # interrupted: what was measured until then
    # Share of the machine busy (every process), mean and highest of the samples after
    # the first minute: whether the soak ran at the load it meant to.
    busy_mean_max: tuple[float, float] = (0.0, 0.0)
    # With trace_memory: (source line, MB grown, allocations grown), largest first,
    # between the warm-up and the end.
    memory_growth: list[tuple[str, float, int]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["samples"] = [
            {**asdict(s), "workers": {str(k): v for k, v in s.workers.items()}}
            for s in self.samples
        ]
        return data


Progress = Callable[[str], None]


def soak_clips(directory: Path) -> dict[str, tuple[Path, list[TruthEvent]]]:
    """The demo channels' clips and their truth at live (made once, then reused)."""
    directory.mkdir(parents=True, exist_ok=True)
    clips = {}
    for name, fields in CHANNELS.items():
        path, truth_path = directory / f"{name}.ts", directory / f"{name}.truth.json"
        spec = ClipSpec(duration_s=CLIP_S, width=CLIP_SIZE[0], height=CLIP_SIZE[1], **fields)
        if not (path.exists() and truth_path.exists()):
            partial = partial_path(path)
            truth = make_clip(partial, spec) + sync_truth(spec)
            truth_path.write_text(json.dumps(truth), encoding="utf-8")
            partial.rename(path)
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        clips[name] = (path, at_profile(truth, "live"))  # the service watches at live
    return clips


class _Plant:
    """The service watching ``streams`` copies of the clips, each fed by its own UDP
    sender, with an SQLite file and a webhook receiver: set up, then torn down."""

    def __init__(
        self, streams: int, clips: dict[str, tuple[Path, list[TruthEvent]]], workers: int | None
    ) -> None:
        channels = list(clips)
        self.names = [f"{channels[i % len(channels)]}-{i // len(channels)}" for i in range(streams)]
        # Bound first, so that no receiver's port is the senders' own (ephemeral) one.
        self._sending = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sending.bind(("127.0.0.1", 0))
        ports = {name: _free_udp_port() for name in self.names}
        self.receiver = _Receiver()
        self._tmp = tempfile.TemporaryDirectory(prefix="avwatch-soak-")
        config = ServiceConfig(
            database=f"sqlite:///{Path(self._tmp.name) / 'soak.db'}",
            workers=workers,
            webhooks=[{"url": self.receiver.url}],
            streams=[StreamSpec(id=n, url=f"udp://127.0.0.1:{ports[n]}") for n in self.names],
        )
        self.service = Service(config)
        self.senders = {
            n: UdpSender(clips[_channel(n)][0], ports[n], seconds=CLIP_S, sock=self._sending)
            for n in self.names
        }

    def __enter__(self) -> _Plant:
        self.service.start()
        for sender in self.senders.values():
            sender.start()
        return self

    def stop_senders(self) -> None:
        for sender in self.senders.values():
            sender.stop()

    def __exit__(self, *_exc: object) -> None:
        self.stop_senders()
        self.service.stop()
        self.receiver.close()
        self._sending.close()
        self._tmp.cleanup()

    def cpu_s(self) -> float:
        """CPU time so far of this process (service and senders) and the live workers."""
        pids = [w["pid"] for w in self.service.workers() if w["pid"]]
        return time.process_time() + sum(_cpu_s(pid) for pid in pids)


def _channel(stream: str) -> str:
    return stream.rsplit("-", 1)[0]


def _cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def live_capacity(
    clips: dict[str, tuple[Path, list[TruthEvent]]], workers: int | None, tell: Progress
) -> float:
    """Streams the cores could take. A first guess comes from what
    CALIBRATION_STREAMS cost live; a stream's cost grows with the count (more
    workers, busier caches, the senders' share of this process), so each guess is
    measured again at LOAD_SHARE of it until the count it gives stops falling."""
    cores = os.cpu_count() or 1
    count = CALIBRATION_STREAMS
    can_take = cores / _share_at(count, clips, workers, tell)
    for _ in range(CALIBRATION_ROUNDS):
        count = max(1, math.floor(LOAD_SHARE * can_take))
        if count <= CALIBRATION_STREAMS:
            break
        measured = cores / _share_at(count, clips, workers, tell)
        if measured >= can_take:
            break
        can_take = measured
    return can_take


def _share_at(
    count: int, clips: dict[str, tuple[Path, list[TruthEvent]]], workers: int | None, tell: Progress
) -> float:
    """The share of a core one of ``count`` live streams takes: the service's process
    and its workers together, after a warm-up."""
    with _Plant(count, clips, workers) as plant:
        time.sleep(CALIBRATION_WARMUP_S)
        cpu, wall = plant.cpu_s(), time.monotonic()
        time.sleep(CALIBRATION_S)
        share = (plant.cpu_s() - cpu) / (time.monotonic() - wall) / count
    tell(f"at {count} streams one live stream takes {share:.1%} of a core")
    return share


def soak(plan: SoakPlan, cache: Path, progress: Progress | None = None) -> SoakResult:
    tell = progress or (lambda _: None)
    if not plan.hours > 0:
        raise ConfigError(f"--hours {plan.hours:g}: must be more than 0")
    clips = soak_clips(cache)
    if plan.streams:
        streams, can_take = plan.streams, None
        tell(f"{streams} streams, {plan.hours:g} h")
    else:
        can_take = round(live_capacity(clips, plan.workers, tell), 1)
        streams = max(1, math.floor(LOAD_SHARE * can_take))
        tell(f"{streams} streams ({can_take:.1f} would fill the machine), {plan.hours:g} h")
    result = SoakResult(plan.hours, streams, 0, can_take)
    with _Plant(streams, clips, plan.workers) as plant:
        began = time.time()
        schedule = _Schedule(plan, plant.names)
        schedule.run(plant.service, plant.senders, result, began, tell)
        plant.stop_senders()
        stopped = time.time()
        time.sleep(SETTLE_S)
        _account(plant.service, plant.senders, clips, schedule, result, began, stopped)
        _alerts(plant.service, plant.receiver, result)
    result.workers = len({pid for s in result.samples for pid in s.workers}) - result.kills
    loaded = [s.busy for s in result.samples if s.at_s >= 60] or [0.0]
    result.busy_mean_max = (round(statistics.fmean(loaded), 3), max(loaded))
    _slopes(result, streams)
    return result


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _Schedule:
    """Cuts and kills on the clock, and samples of memory; what was done, and when."""

    def __init__(self, plan: SoakPlan, names: list[str]) -> None:
        self.plan = plan
        self.names = names
        self.cuts: list[tuple[str, float, float]] = []  # stream, wall start, wall end
        self.kills: list[tuple[list[str], float]] = []  # the worker's streams, wall time

    def run(
        self,
        service: Service,
        senders: dict[str, UdpSender],
        result: SoakResult,
        began: float,
        tell: Progress,
    ) -> None:
        plan = self.plan
        end = began + plan.hours * 3600
        next_sample, next_cut = began, began + plan.cut_every_s
        next_kill = began + plan.kill_every_s
        warm: tracemalloc.Snapshot | None = None
        warm_up = _warm_up_s(plan.hours)
        if plan.trace_memory:
            tracemalloc.start()
        cpu = _machine_cpu_s()
        try:
            while (now := time.time()) < end:
                if now >= next_sample:
                    next_sample += plan.sample_every_s
                    reading = _machine_cpu_s()
                    result.samples.append(_sample(service, now - began, _busy(cpu, reading)))
                    cpu = reading
                    tell(_describe(result.samples[-1], len(self.cuts), len(self.kills)))
                    if plan.trace_memory and warm is None and now - began >= warm_up:
                        warm = tracemalloc.take_snapshot()
                if now >= next_cut:
                    next_cut += plan.cut_every_s
                    self._cut(senders, now)
                if now >= next_kill:
                    next_kill += plan.kill_every_s
                    self._kill(service, now, result, tell)
                time.sleep(max(0.0, min(next_sample, next_cut, next_kill, end) - time.time()))
        except KeyboardInterrupt:  # an hour's figures are worth having when stopped early
            ran_s = time.time() - began
            result.stopped_early = True
            result.hours = round(ran_s / 3600, 4)
            tell(f"stopped after {ran_s / 60:.1f} min: accounting for that")
        result.cuts, result.kills = len(self.cuts), len(self.kills)
        result.worker_restarts = sum(w["restarts"] for w in service.workers())
        if warm is not None:
            grown = tracemalloc.take_snapshot().compare_to(warm, "lineno")
            result.memory_growth = [
                (str(stat.traceback[0]), round(stat.size_diff / 1e6, 3), stat.count_diff)
                for stat in sorted(grown, key=lambda stat: -stat.size_diff)[:MEMORY_GROWTH_LINES]
            ]
        tracemalloc.stop()

    def _cut(self, senders: dict[str, UdpSender], now: float) -> None:
        stream = self.names[len(self.cuts) % len(self.names)]
        senders[stream].paused.set()
        self.cuts.append((stream, now, now + self.plan.cut_s))
        threading.Timer(self.plan.cut_s, senders[stream].paused.clear).start()

    def _kill(self, service: Service, now: float, result: SoakResult, tell: Progress) -> None:
        workers = [w for w in service.workers() if w["alive"] and w["pid"]]
        if not workers:
            return
        victim = workers[len(self.kills) % len(workers)]
        os.kill(victim["pid"], signal.SIGKILL)
        self.kills.append((victim["streams"], now))
        streams = len(victim["streams"])
        tell(f"killed worker {victim['index']} (pid {victim['pid']}, {streams} streams)")
        threading.Thread(
            target=_time_recovery, args=(service, victim["streams"], now, result), daemon=True
        ).start()


def _time_recovery(service: Service, streams: list[str], killed: float, result: SoakResult) -> None:
    """How long until every stream of a killed worker reports ``ok`` again."""
    deadline = killed + 120
    while time.time() < deadline:
        back = [service.status(s) for s in streams]
        if all(s.get("state") == "ok" and s.get("at", 0) > killed + 1 for s in back):
            result.recovery_s.append(round(time.time() - killed, 1))
            return
        time.sleep(0.5)
    result.recovery_s.append(math.inf)


def _rss_mb_and_fds(pid: int) -> tuple[float, int] | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        return round(rss / 1024, 1), len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None


def _machine_cpu_s() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far (/proc/stat)."""
    with open("/proc/stat", encoding="ascii") as f:
        ticks = [int(n) for n in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    total = sum(ticks[:8])  # guest time is counted in user already
    clock = os.sysconf("SC_CLK_TCK")
    return (total - idle) / clock, total / clock


def _busy(before: tuple[float, float], after: tuple[float, float]) -> float:
    """The share of the machine busy between two _machine_cpu_s readings."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return round(busy / total, 3) if total > 0 else 0.0


def _sample(service: Service, at_s: float, busy: float) -> Sample:
    own = _rss_mb_and_fds(os.getpid()) or (0.0, 0)
    workers = {}
    for worker in service.workers():
        found = _rss_mb_and_fds(worker["pid"]) if worker["pid"] else None
        if found is not None:
            workers[worker["pid"]] = found
    return Sample(round(at_s, 1), own[0], own[1], workers, busy)


def _describe(sample: Sample, cuts: int, kills: int) -> str:
    workers = sum(rss for rss, _ in sample.workers.values())
    return (
        f"{sample.at_s / 60:6.1f} min  service {sample.service_rss_mb:6.1f} MB "
        f"{sample.service_fds:4d} files  workers {workers:7.1f} MB  "
        f"busy {sample.busy:4.0%}  cuts {cuts}  kills {kills}"
    )


def _account(
    service: Service,
    senders: dict[str, UdpSender],
    clips: dict[str, tuple[Path, list[TruthEvent]]],
    schedule: _Schedule,
    result: SoakResult,
    began: float,
    stopped: float,
) -> None:
    """Defects played vs incidents stored, cuts vs input_loss incidents."""
    assert service.store is not None
    with service.store.session() as s:
        rows = [
            (r.stream, r.type, r.key, r.started_at.timestamp())
            for r in s.scalars(select(IncidentRow))
        ]
    by_stream: dict[str, list[tuple[str, float]]] = {}
    for stream, type_, key, started in rows:
        if type_ == "loudness" and key in PROGRAMME_CHECKS:
            name = f"{key} on {_channel(stream)}"
            result.programme_checks[name] = result.programme_checks.get(name, 0) + 1
        else:
            by_stream.setdefault(stream, []).append((type_, started))
    for stream, sender in senders.items():
        truth = clips[_channel(stream)][1]
        blind = _blind_spans(stream, schedule, began)
        incidents = [(t, at) for t, at in by_stream.get(stream, []) if t not in MONITOR_TYPES]
        matched: set[int] = set()
        for lap in sender.laps_started:
            for event in truth:
                start, end = lap + event["start"], lap + event["end"]
                hit = next(
                    (
                        i
                        for i, (t, at) in enumerate(incidents)
                        if i not in matched and t == event["type"] and abs(at - start) <= MATCH_S
                    ),
                    None,
                )
                if hit is not None:
                    matched.add(hit)
                counted = end < stopped - MATCH_S and not any(
                    a < end and start < b for a, b in blind
                )
                if counted:
                    result.expected[event["type"]] = result.expected.get(event["type"], 0) + 1
                    if hit is not None:
                        result.found[event["type"]] = result.found.get(event["type"], 0) + 1
        for i, (t, _) in enumerate(incidents):
            if i not in matched:
                key = f"{t} on {_channel(stream)}"
                result.unexpected[key] = result.unexpected.get(key, 0) + 1
    for stream, start, end in schedule.cuts:
        if _killed_during(stream, start, end, schedule.kills):
            result.cuts_left_out += 1
        elif _cut_reported(start, by_stream.get(stream, [])):
            result.cuts_reported += 1


def _killed_during(
    stream: str, start: float, end: float, kills: list[tuple[list[str], float]]
) -> bool:
    """Whether the worker of a cut stream was killed during the cut (or just before
    it): its successor's monitor starts with no data and cannot date the cut."""
    return any(a < end and start < b for a, b in _kill_spans(stream, kills))


def _cut_reported(cut_at: float, incidents: list[tuple[str, float]]) -> bool:
    """An input_loss starts at the last data, which the receiver may have taken a packet
    before the sender paused: near the cut, on either side."""
    return any(t == "input_loss" and abs(at - cut_at) <= MATCH_S for t, at in incidents)


def _blind_spans(stream: str, schedule: _Schedule, began: float) -> list[tuple[float, float]]:
    """When a stream could rightly miss a defect: its start, its cuts, its worker's kills."""
    spans = [(began - 60, began + WARMUP_S)]
    spans += [
        (a - BLIND_AROUND_CUT_S, b + BLIND_AROUND_CUT_S) for s, a, b in schedule.cuts if s == stream
    ]
    return spans + _kill_spans(stream, schedule.kills)


def _kill_spans(stream: str, kills: list[tuple[list[str], float]]) -> list[tuple[float, float]]:
    """When the kills of a stream's worker left it unwatched."""
    return [(at - 1, at + BLIND_AFTER_KILL_S) for streams, at in kills if stream in streams]


def _alerts(service: Service, receiver: _Receiver, result: SoakResult) -> None:
    """Alerts the service wrote to its outbox, and how many reached the receiver."""
    assert service.store is not None and service.dispatcher is not None
    deadline = time.monotonic() + 60
    while service.dispatcher.pending() and time.monotonic() < deadline:
        time.sleep(0.5)
    with service.store.session() as s:
        result.alerts_written = s.scalar(select(func.count()).select_from(OutboxRow)) or 0
    result.alerts_delivered = receiver.unique()


class _Receiver:
    """A webhook receiver on loopback: counts each delivery once (X-Avwatch-Delivery)."""

    def __init__(self) -> None:
        deliveries: set[str] = set()
        self._deliveries = deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                deliveries.add(self.headers.get("X-Avwatch-Delivery", ""))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def unique(self) -> int:
        return len(self._deliveries)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _slope_mb_h(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB), in MB per hour; None for too few points."""
    if len(points) < 3 or points[-1][0] - points[0][0] <= 0:
        return None
    return statistics.linear_regression([t for t, _ in points], [m for _, m in points]).slope * 3600


def _warm_up_s(hours: float) -> float:
    """Where the memory slope is fitted from."""
    return min(SLOPE_FROM_S, hours * 3600 / 4)


def _slopes(result: SoakResult, streams: int) -> None:
    """Resident memory's trend, after the warm-up: the service's, and each worker's over
    its own lifetime, after a warm-up of its own (a killed worker's successor starts
    from nothing, and reopens its streams' decoders and detectors)."""
    warm_up = _warm_up_s(result.hours)
    warm = [s for s in result.samples if s.at_s >= warm_up]
    result.service_rss_slope_mb_h = round(
        _slope_mb_h([(s.at_s, s.service_rss_mb) for s in warm]) or 0.0, 2
    )
    born: dict[int, float] = {}
    lifetimes: dict[int, list[tuple[float, float]]] = {}
    for s in result.samples:
        for pid, (rss, _) in s.workers.items():
            if s.at_s >= born.setdefault(pid, s.at_s) + warm_up:
                lifetimes.setdefault(pid, []).append((s.at_s, rss))
    fitted = [
        (slope, points[-1][0] - points[0][0])
        for points in lifetimes.values()
        if (slope := _slope_mb_h(points)) is not None
    ]
    span = sum(w for _, w in fitted)
    worker_slope = sum(slope * w for slope, w in fitted) / span if span else 0.0
    result.worker_rss_slope_mb_h = round(worker_slope, 2)
    workers = max((len(s.workers) for s in warm), default=0)
    total = result.service_rss_slope_mb_h + workers * worker_slope
    result.rss_slope_mb_per_stream_hour = round(total / streams, 3)
    if warm:  # every stream open by then
        result.fds_first_last = (
            warm[0].service_fds + sum(f for _, f in warm[0].workers.values()),
            warm[-1].service_fds + sum(f for _, f in warm[-1].workers.values()),
        )
