"""Worker processes: each runs the monitors of a group of streams.

Decode and analysis of a stream stay in one process (nothing is copied between
processes but incidents, evidence and status); streams share a few workers,
one per core by default. The pool places a new stream on the least loaded
worker, and a watchdog restarts a worker that died and gives it back its
streams.

Workers are started with ``spawn``: the parent runs threads (API, store,
alerts), and forking a threaded process copies locks in whatever state they
were in. Each worker has a pipe of its own back to the pool: a worker killed
in the middle of a message then costs that message (the pipe ends, the
reader sees EOF), where a queue shared by all workers would be left holding
half a message and hang every reader after it. The service handles the messages
on a thread of its own (service/inbox.py), so that a service slow to store them
does not make its workers look hung.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import multiprocessing.process
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from avwatch.service.heap import pin_mmap_threshold
from avwatch.service.inbox import Inbox
from avwatch.service.messages import (
    ExitWorker,
    Heartbeat,
    StartStream,
    StopStream,
    WorkerCommand,
    WorkerMessage,
)

if TYPE_CHECKING:
    from avwatch.analysis.escalation import FullSlots
    from avwatch.service.monitor import StreamMonitor

__all__ = [
    "HEARTBEAT_S",
    "HUNG_AFTER_S",
    "MonitorGroup",
    "WorkerPool",
    "Workers",
    "all_siblings",
    "least_loaded",
]

log = logging.getLogger(__name__)

OnMessage = Callable[[WorkerMessage], None]
OnRestart = Callable[[int, list[str]], None]

WATCHDOG_S = 0.5
# A worker says it is turning every HEARTBEAT_S, and checks its service is there and its
# monitors' threads alive as often. One silent for HUNG_AFTER_S (stopped, swapped out,
# stuck) is killed and replaced like one that died.
HEARTBEAT_S = 1.0
HUNG_AFTER_S = 10.0
STARTUP_S = 60.0


class Workers(Protocol):
    """Where the service's streams run: ``WorkerPool`` (local processes) is the
    default; tests that need no monitoring pass a fake."""

    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...

    def assign(self, key: str, spec: dict[str, Any], engine: dict[str, Any]) -> int:
        """Run (or re-run with new settings) a stream's monitor; returns its worker's
        index. ``key``: the stream id, or a split stream part's (service/parts.py)."""
        ...

    def remove(self, key: str) -> None: ...

    def describe(self) -> list[dict[str, Any]]:
        """Each worker: index, pid, alive, streams, restarts."""
        ...


class _Holder(Protocol):
    index: int
    streams: dict[str, tuple[dict[str, Any], dict[str, Any]]]


HolderT = TypeVar("HolderT", bound=_Holder)


def all_siblings(workers: Sequence[_Holder], key: str) -> bool:
    """Whether every one of ``workers`` holds another part of ``key``'s stream."""
    from avwatch.service.parts import split_key

    stream = split_key(key)[0]
    return all(any(split_key(k)[0] == stream for k in w.streams) for w in workers)


def least_loaded(workers: Sequence[HolderT], key: str) -> HolderT:
    """Where a new monitor goes: the worker with the fewest, away from the other parts
    of its stream where one can be (a split stream's parts share no CPU)."""
    from avwatch.service.parts import split_key

    stream = split_key(key)[0]

    def load(worker: HolderT) -> tuple[bool, int, int]:
        sibling = any(split_key(k)[0] == stream for k in worker.streams)
        return sibling, len(worker.streams), worker.index

    return min(workers, key=load)


class _Sender:
    """A worker's end of its pipe: monitors' threads send through one lock."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.lock = threading.Lock()

    def put(self, message: WorkerMessage | Heartbeat) -> None:
        # The pool gone: nobody to tell; the worker's loop sees it and exits.
        with self.lock, contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.connection.send(message)


def worker_main(
    index: int,
    commands: Any,
    out: Connection,
    queue_frames: int,
    cpu: int | None = None,
    parent: int | None = None,
) -> None:
    """The worker process: start and stop monitors as the pool says; exit when the pool
    says so, or when ``parent`` (the service's process) is gone."""
    if cpu is not None:
        # Before any import starts a thread (OpenBLAS, OpenCV): every thread inherits it.
        refused = pin_to_cpu(cpu)
        if refused is not None:
            print(f"worker {index}: not pinned to CPU {cpu}: {refused}", file=sys.stderr)
    logging.basicConfig(level=logging.WARNING, format=f"worker {index}: %(message)s")
    sender = _Sender(out)
    group = MonitorGroup(sender.put, queue_frames)
    last_beat = 0.0
    while True:
        now = time.monotonic()
        if now - last_beat >= HEARTBEAT_S:
            last_beat = now
            sender.put(Heartbeat(index))
            group.restart_failed()
        try:
            command: WorkerCommand = commands.get(timeout=HEARTBEAT_S)
        except queue.Empty:
            if parent is not None and os.getppid() != parent:  # the service died unstopped
                command = ExitWorker()
            else:
                continue
        if isinstance(command, ExitWorker):
            group.stop_all()
            out.close()
            return
        group.handle(command)


class MonitorGroup:
    """The monitors of one worker (a process here, a Ray actor in ray_pool.py): started,
    replaced and stopped as commands say; one whose thread died is restarted."""

    def __init__(self, emit: Callable[[WorkerMessage], None], queue_frames: int) -> None:
        # Imported here, not at the top: a worker pins its CPU before any import can
        # start a thread (OpenBLAS, OpenCV), and every thread inherits the pinning.
        from avwatch.detectors.base import available_detectors

        pin_mmap_threshold()  # weeks of pictures and packets must not creep (heap.py)
        # Import every detector (and scipy) now: on a first stream's analysis thread the
        # imports would stall it long enough for its input to drop samples.
        available_detectors()
        self.emit = emit
        self.queue_frames = queue_frames
        self.monitors: dict[str, StreamMonitor] = {}
        self.running: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}  # spec, engine
        self.since: dict[str, float] = {}  # when each stream's monitor started (wall clock)
        # The budget of full analysis its patrolled streams share (its size: the first
        # stream's engine settings).
        self._slots: FullSlots | None = None

    def handle(self, command: StartStream | StopStream, *, keep_same: bool = False) -> None:
        """Monitors are keyed by StartStream.monitor_key (a split stream's parts are
        several). ``keep_same``: a start of a monitor already running with these very
        settings leaves it running (a head that restarted hands out its streams again)."""
        from avwatch.analysis.escalation import FullSlots
        from avwatch.config import EngineConfig
        from avwatch.service.config import StreamSpec
        from avwatch.service.monitor import StreamMonitor
        from avwatch.service.parts import split_key

        if isinstance(command, StopStream):
            if command.stream in self.monitors:
                self.monitors.pop(command.stream).stop()
                del self.running[command.stream], self.since[command.stream]
            return
        key = command.monitor_key
        if keep_same and self.running.get(key) == (command.spec, command.engine):
            return
        spec = StreamSpec.model_validate(command.spec)
        engine = EngineConfig.model_validate(command.engine)
        if key in self.monitors:
            self.monitors.pop(key).stop()
        if self._slots is None:
            self._slots = FullSlots(engine.escalation.full_slots)
        monitor = StreamMonitor(
            spec,
            engine,
            self.emit,
            queue_frames=self.queue_frames,
            slots=self._slots,
            part=split_key(key)[1],
        )
        self.monitors[key] = monitor
        self.running[key] = (command.spec, command.engine)
        self.since[key] = time.time()
        monitor.start()

    def restart_failed(self) -> None:
        for stream_id, monitor in list(self.monitors.items()):
            if monitor.failure is not None:  # one of its threads died: never blind
                self.monitors[stream_id] = monitor.restarted()

    def stop_all(self) -> None:
        for monitor in self.monitors.values():
            monitor.stop()
        self.monitors.clear()
        self.running.clear()
        self.since.clear()


def pin_to_cpu(cpu: int) -> OSError | None:
    """Pin this process, and every thread it starts from now on, to ``cpu``. Returns
    why not where a container forbids it: the process then runs unpinned."""
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        return exc
    return None


def cpus_to_pin(workers: int) -> list[int]:
    """The CPUs the workers are pinned to, round robin: those this process may use,
    when every one of them gets a worker (a worker pinned alone to one of several
    would leave the rest idle); none where the platform cannot pin."""
    if not hasattr(os, "sched_getaffinity"):
        return []
    cpus = sorted(os.sched_getaffinity(0))
    return cpus if workers >= len(cpus) > 1 else []


@dataclass
class _Worker:
    index: int
    process: multiprocessing.process.BaseProcess
    commands: Any
    messages: Connection | None  # None once the pipe has ended
    streams: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    restarts: int = 0
    started: float = field(default_factory=time.monotonic)
    heard: float | None = None  # its last message, of any kind; None before the first

    def silent_s(self, now: float) -> float:
        return now - (self.started if self.heard is None else self.heard)

    def hung(self, now: float, after_s: float) -> bool:
        # A worker starting (imports, under load) gets longer before its first word.
        return self.silent_s(now) > (after_s if self.heard is not None else STARTUP_S)


class WorkerPool:
    def __init__(
        self,
        count: int,
        on_message: OnMessage,
        *,
        on_restart: OnRestart | None = None,
        queue_frames: int = 50,
        pin: bool = False,
        hung_after_s: float = HUNG_AFTER_S,
    ) -> None:
        self.count = count
        self.hung_after_s = hung_after_s
        self.on_message = on_message
        self.on_restart = on_restart
        self.queue_frames = queue_frames
        self.cpus = cpus_to_pin(count) if pin else []
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._inbox = Inbox(on_message)

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        self._workers = [self._spawn(i) for i in range(self.count)]
        self._inbox.start()
        for target, name in ((self._drain, "pool-messages"), (self._watch, "pool-watchdog")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            if worker.process.is_alive():
                worker.commands.put(ExitWorker())
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.process.join(max(0.1, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1)
        for thread in self._threads:
            thread.join(2)
        self._drain_now()
        self._inbox.stop()

    # -- streams ----------------------------------------------------------------------
    def assign(self, key: str, spec: dict[str, Any], engine: dict[str, Any]) -> int:
        with self._lock:
            worker = self._worker_of(key) or least_loaded(self._workers, key)
            worker.streams[key] = (spec, engine)
            worker.commands.put(StartStream(spec, engine, key))
            return worker.index

    def remove(self, key: str) -> None:
        with self._lock:
            worker = self._worker_of(key)
            if worker is not None:
                del worker.streams[key]
                worker.commands.put(StopStream(key))

    def describe(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            return [
                {
                    "index": w.index,
                    "pid": w.process.pid,
                    "alive": w.process.is_alive(),
                    "streams": sorted(w.streams),
                    "restarts": w.restarts,
                    "cpu": self._cpu_of(w.index),
                    "silent_s": round(w.silent_s(now), 1),
                    "started": w.heard is not None,  # has sent its first heartbeat
                    # Heard from within a few heartbeats (or still starting up).
                    "responsive": not w.hung(now, 5 * HEARTBEAT_S),
                    # Its messages the service has not handled yet: the service behind.
                    "undelivered": self._inbox.undelivered(w.index),
                    "reports_dropped": self._inbox.dropped(w.index),
                }
                for w in self._workers
            ]

    # -- internals --------------------------------------------------------------------
    def _worker_of(self, stream_id: str) -> _Worker | None:
        return next((w for w in self._workers if stream_id in w.streams), None)

    def _cpu_of(self, index: int) -> int | None:
        return self.cpus[index % len(self.cpus)] if self.cpus else None

    def _spawn(self, index: int) -> _Worker:
        commands = self._ctx.Queue()
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=worker_main,
            args=(index, commands, writer, self.queue_frames, self._cpu_of(index), os.getpid()),
            name=f"avwatch-worker-{index}",
            daemon=True,
        )
        process.start()
        writer.close()  # the child's end only: the pipe ends when the child does
        return _Worker(index, process, commands, reader)

    def _watch(self) -> None:
        """Restart a worker that died or hung, and give it back its streams."""
        while not self._stop.wait(WATCHDOG_S):
            with self._lock:
                now = time.monotonic()
                for worker in self._workers:
                    if worker.hung(now, self.hung_after_s) and worker.process.is_alive():
                        log.error(
                            "worker %d (pid %s) silent for %.0f s; killing it",
                            worker.index,
                            worker.process.pid,
                            worker.silent_s(now),
                        )
                        worker.process.kill()
                        worker.process.join(5)
                dead = [w for w in self._workers if not w.process.is_alive()]
                for worker in dead:
                    if self._stop.is_set():
                        return
                    log.error(
                        "worker %d (pid %s) died with exit code %s; restarting it",
                        worker.index,
                        worker.process.pid,
                        worker.process.exitcode,
                    )
                    fresh = self._spawn(worker.index)
                    fresh.streams = worker.streams
                    fresh.restarts = worker.restarts + 1
                    self._workers[worker.index] = fresh
                    for key, (spec, engine) in fresh.streams.items():
                        fresh.commands.put(StartStream(spec, engine, key))
            for worker in dead:
                if self.on_restart:  # after what it sent before it died
                    self._inbox.after(
                        partial(self.on_restart, worker.index, sorted(worker.streams))
                    )

    def _drain(self) -> None:
        while not self._stop.is_set():
            self._receive(timeout=0.5)

    def _drain_now(self) -> None:
        """After the workers exited: what they sent last."""
        while self._receive(timeout=0.2):
            pass

    def _receive(self, timeout: float) -> bool:
        """Take in what arrived within ``timeout``; False if nothing did. Any message
        shows its worker alive; all but heartbeats go on to the service."""
        with self._lock:
            pipes = {w.messages: w for w in self._workers if w.messages is not None}
        if not pipes:
            time.sleep(timeout)
            return False
        ready = wait(list(pipes), timeout)
        for pipe in ready:
            assert isinstance(pipe, Connection)
            try:
                message = pipe.recv()
            except (EOFError, OSError):  # the worker is gone; its restart brings a new pipe
                pipes[pipe].messages = None
                pipe.close()
                continue
            worker = pipes[pipe]
            worker.heard = time.monotonic()
            if not isinstance(message, Heartbeat):
                self._inbox.put(worker.index, message)
        return bool(ready)
