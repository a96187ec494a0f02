"""Workers as Ray actors: ``serve`` across machines (``cluster: {backend: ray}``).

Each actor reserves one CPU and runs a ``MonitorGroup``, as a worker process does on
one machine: a stream's pictures never leave the actor that decodes them. Incidents,
evidence, status and meters wait on the actor until the head takes them, every
quarter second (one remote call per actor; until a head takes them, they are kept).
Each batch names the actor's incarnation, so that what a replaced actor still held
is dropped.

The head pings every actor. One whose ping fails (its node was lost, it crashed) or
that has said nothing for ``hung_after_s`` (frozen) is replaced: Ray puts the new one
on a node with a free CPU, and it is given back the streams; the service closes the
incidents they had open (``closed_by``), and a defect that persists opens anew.

Actors are named and detached: a head that restarts finds them, with their streams
still running, and a stream handed out again with the same settings is not
restarted. A head that stops normally ends its actors.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import ray
from ray.exceptions import (
    ActorDiedError,
    ActorUnavailableError,
    GetTimeoutError,
    RayActorError,
)

from avwatch.errors import ClusterUnreachable, reason
from avwatch.service.inbox import Inbox
from avwatch.service.messages import (
    Heartbeat,
    StartStream,
    StatusReport,
    StopStream,
    StreamStatus,
    WorkerMessage,
)
from avwatch.service.parts import split_key
from avwatch.service.workers import (
    HEARTBEAT_S,
    HUNG_AFTER_S,
    MonitorGroup,
    OnMessage,
    OnRestart,
    all_siblings,
    least_loaded,
)

__all__ = ["NAMESPACE", "MonitorActor", "RayPool"]

log = logging.getLogger(__name__)

NAMESPACE = "avwatch"
TAKE_EVERY_S = 0.25  # the head takes each actor's messages: a meter's pace
PENDING_AFTER_S = 5.0  # an actor not started by then is waiting for room: say so
PENDING_EVERY_S = 2.0  # as often as a running stream's status
WATCHDOG_S = 0.5
CALL_TIMEOUT_S = 10.0
MAX_UNSENT = 20_000  # messages an actor keeps while no head takes them
CONNECT_TIMEOUT_S = 10.0


class MonitorActor:
    """One worker on a Ray node (made a Ray actor by ``RayPool``)."""

    def __init__(
        self, index: int, incarnation: str, queue_frames: int, resources: dict[str, float]
    ) -> None:
        logging.basicConfig(level=logging.WARNING, format=f"ray worker {index}: %(message)s")
        self.index = index
        self.incarnation = incarnation  # this actor, not another under the same index
        self.resources = resources  # the custom resources it was placed by
        self._unsent: deque[WorkerMessage | Heartbeat] = deque(maxlen=MAX_UNSENT)
        self._lock = threading.Lock()  # the group: the head's calls and the restarts
        self.group = MonitorGroup(self._unsent.append, queue_frames)
        self._stop = threading.Event()
        threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()

    def start_stream(self, key: str, spec: dict[str, Any], engine: dict[str, Any]) -> None:
        with self._lock:
            self.group.handle(StartStream(spec, engine, key), keep_same=True)

    def stop_stream(self, key: str) -> None:
        with self._lock:
            self.group.handle(StopStream(key))

    def running(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """The streams running here (for a new head)."""
        with self._lock:
            return dict(self.group.running)

    def running_since(self) -> dict[str, float]:
        """When each stream's monitor started here (wall clock)."""
        with self._lock:
            return dict(self.group.since)

    @ray.method(concurrency_group="reports")
    def where(self) -> dict[str, Any]:
        context = ray.get_runtime_context()
        return {
            "pid": os.getpid(),
            "node": context.get_node_id(),
            "resources": self.resources,
            "incarnation": self.incarnation,
        }

    @ray.method(concurrency_group="reports")
    def take(self) -> tuple[str, list[WorkerMessage | Heartbeat]]:
        """Every message since the last take, and who sends them."""
        batch = []
        while self._unsent:
            batch.append(self._unsent.popleft())
        return self.incarnation, batch

    def exit(self) -> None:
        with self._lock:
            self.group.stop_all()
        self._stop.set()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self._unsent.append(Heartbeat(self.index))
            with self._lock:
                self.group.restart_failed()


@dataclass
class _Actor:
    index: int
    incarnation: str
    handle: Any
    streams: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    restarts: int = 0
    started: float = field(default_factory=time.monotonic)
    heard: float | None = None
    ping: Any = None  # the pending ping's object ref
    taking: Any = None  # the pending take's object ref
    where: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, float] = field(default_factory=dict)
    idle_since: float | None = None  # since when it holds no stream

    @property
    def pending(self) -> bool:
        """Not started yet: waiting for a node with a free CPU (and its resources)."""
        return self.heard is None

    def silent_s(self, now: float) -> float:
        return now - (self.started if self.heard is None else self.heard)


class RayPool:
    """``Workers`` on a Ray cluster: ``count`` actors at least (by default one per CPU of
    it), each with ``per_worker`` monitors at most (None: no limit). A stream that fits
    in none, or that needs custom resources (``placement``), gets a new actor, up to
    ``max_count``; one that Ray cannot place yet is pending, its streams too, and is
    Ray's autoscaler's demand. Actors beyond ``count`` left with no stream for
    ``idle_after_s`` are given back."""

    def __init__(
        self,
        count: int | None,
        on_message: OnMessage,
        *,
        on_restart: OnRestart | None = None,
        queue_frames: int = 50,
        address: str = "auto",
        namespace: str = NAMESPACE,
        hung_after_s: float = HUNG_AFTER_S,
        per_worker: int | None = None,
        max_count: int = 256,
        idle_after_s: float = 30.0,
    ) -> None:
        self.count = count
        self.per_worker = per_worker
        self.max_count = max_count
        self.base = 0  # the actors kept however idle (count, or the cluster's CPUs)
        self.on_message = on_message
        self.on_restart = on_restart
        self.queue_frames = queue_frames
        self.address = address
        self.namespace = namespace
        self.hung_after_s = hung_after_s
        self.idle_after_s = idle_after_s
        self.reclaimed = 0  # actors of an earlier head found running
        self._actors: list[_Actor] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._inbox = Inbox(on_message)
        self._remote: Any = None
        self._initialised_here = False

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        if not ray.is_initialized():
            join(self.address, self.namespace)
            self._initialised_here = True
        cpus = ray.cluster_resources().get("CPU", 0)  # type: ignore[no-untyped-call]
        # A cluster of no CPU yet (its autoscaler adds the nodes) starts none: each
        # stream's actor is then its demand.
        count = self.count if self.count is not None else int(cpus)
        # A take or a ping runs beside a stream's start, never behind it; the starts
        # and stops keep their order in the default group (one at a time).
        self._remote = ray.remote(concurrency_groups={"reports": 2})(MonitorActor)  # type: ignore[call-overload]
        self.base = count
        self._actors = [self._reclaim(i) or self._spawn(i, {}) for i in range(count)]
        while (found := self._reclaim(len(self._actors))) is not None:  # and its extra ones
            self._actors.append(found)
        self._inbox.start()
        for target, name in ((self._drain, "ray-messages"), (self._watch, "ray-watchdog")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._lock:
            actors = list(self._actors)
        ends = [a.handle.exit.remote() for a in actors]
        ray.wait(ends, num_returns=len(ends), timeout=timeout)
        for thread in self._threads:
            thread.join(2)
        # What the monitors said as they stopped: a take still out from before the exit
        # may hold only what came earlier, so one more after it.
        for _ in range(2):
            self._take_all(actors, timeout)
        self._inbox.stop()
        for actor in actors:
            ray.kill(actor.handle, no_restart=True)  # detached: they would outlive us
        if self._initialised_here:
            ray.shutdown()

    # -- streams ----------------------------------------------------------------------
    def assign(self, key: str, spec: dict[str, Any], engine: dict[str, Any]) -> int:
        with self._lock:
            actor = next((a for a in self._actors if key in a.streams), None)
            resources = spec.get("placement", {}).get("resources", {})
            if actor is not None and actor.resources != resources:  # placed elsewhere now
                del actor.streams[key]
                actor.handle.stop_stream.remote(key)
                actor = None
            actor = actor or self._room_for(key, resources)
            actor.streams[key] = (spec, engine)
            actor.idle_since = None
            actor.handle.start_stream.remote(key, spec, engine)
            return actor.index

    def _room_for(self, key: str, resources: dict[str, float]) -> _Actor:
        """An actor of these resources with room for one more monitor; a new one if
        none has room (while under max_count)."""
        alike = [a for a in self._actors if a.resources == resources]
        roomy = [a for a in alike if self.per_worker is None or len(a.streams) < self.per_worker]
        if roomy and not (len(self._actors) < self.max_count and all_siblings(roomy, key)):
            return least_loaded(roomy, key)
        if len(self._actors) >= self.max_count:
            return least_loaded(alike or self._actors, key)  # over capacity, not refused
        used = {a.index for a in self._actors}
        actor = self._spawn(next(i for i in itertools.count() if i not in used), resources)
        self._actors.append(actor)
        return actor

    def remove(self, key: str) -> None:
        with self._lock:
            actor = next((a for a in self._actors if key in a.streams), None)
            if actor is not None:
                del actor.streams[key]
                actor.handle.stop_stream.remote(key)

    def describe(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            return [
                {
                    "index": a.index,
                    "pid": a.where.get("pid"),
                    "node": a.where.get("node"),
                    "alive": True,
                    "state": "pending" if a.pending else "running",
                    "resources": a.resources,
                    "streams": sorted(a.streams),
                    "restarts": a.restarts,
                    "cpu": None,
                    "silent_s": round(a.silent_s(now), 1),
                    "started": a.heard is not None,
                    "responsive": a.silent_s(now) <= 5 * HEARTBEAT_S,
                    "undelivered": self._inbox.undelivered(a.index),
                    "reports_dropped": self._inbox.dropped(a.index),
                }
                for a in self._actors
            ]

    # -- internals --------------------------------------------------------------------
    def _name(self, index: int) -> str:
        return f"avwatch-worker-{index}"

    def _reclaim(self, index: int) -> _Actor | None:
        """The actor an earlier head left running under this index, with its streams."""
        try:
            handle = ray.get_actor(self._name(index), namespace=self.namespace)
            streams: Any = ray.get(handle.running.remote(), timeout=CALL_TIMEOUT_S)
            where: dict[str, Any] = ray.get(handle.where.remote(), timeout=CALL_TIMEOUT_S)
        except (ValueError, RayActorError, GetTimeoutError):
            return None
        self.reclaimed += 1
        return _Actor(
            index,
            where["incarnation"],
            handle,
            dict(streams),
            where=where,
            resources=where["resources"],
        )

    def _spawn(self, index: int, resources: dict[str, float]) -> _Actor:
        incarnation = uuid.uuid4().hex[:12]
        handle = self._remote.options(
            name=self._name(index),
            namespace=self.namespace,
            lifetime="detached",
            num_cpus=1,
            resources=resources,
            max_restarts=0,  # the watchdog replaces it, and gives it back its streams
            scheduling_strategy="SPREAD",
        ).remote(index, incarnation, self.queue_frames, resources)
        return _Actor(index, incarnation, handle, resources=resources)

    def _watch(self) -> None:
        told_pending = 0.0
        while not self._stop.wait(WATCHDOG_S):
            lost: list[_Actor] = []
            with self._lock:
                now = time.monotonic()
                self._give_back_idle(now)
                for n, actor in enumerate(self._actors):
                    why = self._why_lost(actor, now)
                    if why is None:
                        continue
                    if self._stop.is_set():
                        return
                    log.error("ray worker %d %s; replacing it", actor.index, why)
                    ray.kill(actor.handle, no_restart=True)
                    try:
                        fresh = self._spawn(actor.index, actor.resources)
                    except ValueError:  # its name is not free yet: the next round
                        continue
                    fresh.streams = actor.streams
                    fresh.restarts = actor.restarts + 1
                    self._actors[n] = fresh
                    for key, (spec, engine) in fresh.streams.items():
                        fresh.handle.start_stream.remote(key, spec, engine)
                    lost.append(actor)
            for actor in lost:
                if self.on_restart:  # after what it sent before it was lost
                    self._inbox.after(partial(self.on_restart, actor.index, sorted(actor.streams)))
            if now - told_pending >= PENDING_EVERY_S:
                told_pending = now
                self._tell_pending(now)

    def _give_back_idle(self, now: float) -> None:
        """Actors beyond the base with no stream for ``idle_after_s`` free their CPU."""
        for actor in list(self._actors):
            if actor.streams or actor.index < self.base:
                continue
            actor.idle_since = actor.idle_since or now
            if now - actor.idle_since >= self.idle_after_s:
                log.warning(
                    "ray worker %d idle for %.0f s; giving it back", actor.index, self.idle_after_s
                )
                ray.kill(actor.handle, no_restart=True)
                self._actors.remove(actor)

    def _tell_pending(self, now: float) -> None:
        """Streams on an actor Ray has not placed yet say so: ``state: pending``."""
        with self._lock:
            waiting = [
                (a.index, key)
                for a in self._actors
                if a.pending and now - a.started > PENDING_AFTER_S
                for key in a.streams
            ]
        for index, key in waiting:
            stream, part = split_key(key)
            self._inbox.put(index, StatusReport(stream, pending_status(), part=part))

    def _why_lost(self, actor: _Actor, now: float) -> str | None:
        """Why ``actor`` must be replaced (None: it is well); pings it on the way."""
        if actor.ping is not None:
            ready, _ = ray.wait([actor.ping], timeout=0)
            if ready:
                try:
                    actor.where = ray.get(ready[0])
                except ActorDiedError as exc:
                    return f"died ({type(exc).__name__})"
                except ActorUnavailableError:
                    pass  # unreachable for now (it may come back): its silence decides
                actor.ping = None
        if actor.ping is None:
            actor.ping = actor.handle.where.remote()
        # One never heard from is waiting to be placed (pending): no limit to that.
        if actor.heard is not None and actor.silent_s(now) > self.hung_after_s:
            return f"silent for {actor.silent_s(now):.0f} s"
        return None

    def _drain(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            with self._lock:
                actors = list(self._actors)
            self._take_all(actors, TAKE_EVERY_S)
            self._stop.wait(max(0.0, TAKE_EVERY_S - (time.monotonic() - began)))

    def _take_all(self, actors: list[_Actor], timeout: float) -> None:
        """Ask each actor for its messages (one call each, one at a time per actor) and
        hand on what came back within ``timeout``."""
        for actor in actors:
            if actor.taking is None:
                actor.taking = actor.handle.take.remote()
        asked = {actor.taking: actor for actor in actors}
        if not asked:
            return
        ready, _ = ray.wait(list(asked), num_returns=len(asked), timeout=timeout)
        for ref in ready:
            asked[ref].taking = None
            try:
                incarnation, batch = ray.get(ref)
            except RayActorError:  # lost: the watchdog replaces it
                continue
            self._deliver(incarnation, batch)

    def _deliver(self, incarnation: str, batch: list[WorkerMessage | Heartbeat]) -> None:
        with self._lock:
            sender = next((a for a in self._actors if a.incarnation == incarnation), None)
        if sender is None:  # replaced or given back: the streams are another's now
            if batch:
                log.warning("dropped %d messages from a replaced ray worker", len(batch))
            return
        for message in batch:
            if isinstance(message, Heartbeat):
                sender.heard = time.monotonic()
            else:
                self._inbox.put(sender.index, message)


def pending_status() -> StreamStatus:
    """A stream waiting for Ray to place its actor: not watched yet."""
    return StreamStatus(
        state="pending",
        fps=0.0,
        lag_s=0.0,
        bytes_read=0,
        dropped_samples=0,
        reconnects=0,
        last_data_at=None,
        last_error="waiting for a node with a free CPU (and the stream's resources)",
        at=time.time(),
    )


def join(address: str, namespace: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Connect this process to the Ray cluster at ``address``, or raise
    ``ClusterUnreachable`` saying why.

    ray.init gives a head that does not answer about twelve minutes (20 tries, each a
    5 s connect and a 30 s wait for the cluster's id) before it fails: one TCP connect
    first turns an address with nobody there into an error within ``timeout_s``."""
    head = _head(address)
    if head is not None:
        try:
            socket.create_connection(head, timeout=timeout_s).close()
        except OSError as exc:
            raise ClusterUnreachable(
                f"the Ray cluster at {address} does not answer: {reason(exc)}"
            ) from exc
    try:
        ray.init(
            address=address,
            namespace=namespace,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    except (ConnectionError, RuntimeError) as exc:
        raise ClusterUnreachable(f"cannot join the Ray cluster at {address}: {exc}") from exc


def _head(address: str) -> tuple[str, int] | None:
    """The host and port a cluster address names (HOST:PORT, ray://HOST:PORT); None
    for ``auto`` (Ray finds the cluster of this machine) or an address without a port."""
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        port = parts.port
    except ValueError:  # not a number: ray.init says what is wrong with it
        return None
    if parts.hostname is None or port is None:
        return None
    return parts.hostname, port
