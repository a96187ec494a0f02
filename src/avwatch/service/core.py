"""The service: streams placed on workers, their messages turned into stored
incidents, evidence, alerts and metrics.

``Service`` is what ``avwatch serve`` runs and what the API talks to. It owns
the store (the only writer is the thread that handles worker messages, plus
API requests), the worker pool, the outbox dispatcher and the metrics.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import sqlite3
import time
from collections import deque
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from avwatch.config import (
    check_detector_options,
    detector_config,
    detector_options,
    validated,
)
from avwatch.detectors.base import available_detectors
from avwatch.errors import AvwatchError, ConfigError, InputError
from avwatch.input.source import check_url
from avwatch.service.alerts import (
    FlapGuard,
    OutboxDispatcher,
    alert_rows,
    matching_hooks,
    run_command_hook,
)
from avwatch.service.config import ServiceConfig, StreamSpec, spool_path, stream_engine_config
from avwatch.service.events import EventHub
from avwatch.service.heap import pin_mmap_threshold
from avwatch.service.messages import (
    Evidence,
    IncidentUpdate,
    LevelsReport,
    Signals,
    StatusReport,
    WorkerMessage,
)
from avwatch.service.metrics import ServiceMetrics
from avwatch.service.parts import detector_parts, part_key, split_key
from avwatch.service.signals import SignalHistory
from avwatch.service.spool import Spool, StoreChange
from avwatch.service.store import EvidenceRow, IncidentRow, Store, StreamRow, now_utc, one_line
from avwatch.service.workers import WorkerPool, Workers

__all__ = [
    "IncidentNotFound",
    "NotFound",
    "Service",
    "StreamConflict",
    "StreamNotFound",
    "incident_row",
    "stream_row",
]


log = logging.getLogger(__name__)

EVIDENCE_PRUNE_EVERY_S = 60.0
MAX_UNSTORED = 100_000  # changes kept while the store cannot be written


class NotFound(AvwatchError):
    """What a request named is not there (the API answers 404)."""


class StreamNotFound(NotFound):
    pass


class IncidentNotFound(NotFound):
    pass


class StreamConflict(AvwatchError):
    pass


class Service:
    def __init__(
        self, config: ServiceConfig, *, database: str | None = None, pool: Workers | None = None
    ) -> None:
        """``pool``: where streams run; by default, worker processes made at ``start``."""
        self.config = config
        self.database = database or config.database
        self.metrics = ServiceMetrics()
        self.started_at = time.time()
        self.store: Store | None = None
        self.pool: Workers | None = pool
        self.dispatcher: OutboxDispatcher | None = None
        self._status: dict[str, dict[str, Any]] = {}
        self._thumbnails: dict[str, bytes] = {}
        self._levels: dict[str, dict[str, Any]] = {}  # each stream's latest audio meters
        self.flaps = FlapGuard(config.flap_window_s, self.metrics.alerts_suppressed.inc)
        self._outbox_checked = 0.0
        self._evidence_pruned = -math.inf
        # Incident changes and evidence the store could not take yet, oldest first; the
        # first ``_spooled`` of them are in the spool file too.
        self._unstored: deque[StoreChange] = deque()
        spool = spool_path(config, self.database)
        self.spool = None if spool is None else Spool(spool)
        self._spooled = 0
        self._spool_used = False  # the file may hold something: delete it once all is stored
        self.store_error: str | None = None
        self.store_file_event: str | None = None  # the database file deleted or replaced
        self.events = EventHub()
        self.signals = SignalHistory()
        self._keys: dict[str, list[str]] = {}  # each running stream's monitors (parts)
        self._part_status: dict[str, dict[int, dict[str, Any]]] = {}  # parts after the first

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        for spec in self.config.streams:
            self.validate(spec)
        pin_mmap_threshold()  # a service runs for weeks: its memory must not creep (heap.py)
        self.store = Store.open(self.database)
        if self.spool is not None:  # what the last run could not store, stored first
            self._unstored.extend(self.spool.read())
            self._spooled = len(self._unstored)
            self._spool_used = self.spool.path.exists()
            if self._unstored:
                log.warning("storing %d changes kept in %s", self._spooled, self.spool.path)
            self._store_pending()
        self._close_open_incidents("service restart")
        self._seed_streams()
        self.dispatcher = OutboxDispatcher(self.store, self.config.webhooks)
        self.dispatcher.start()
        if self.pool is None:
            self.pool = self._make_pool()
        try:
            self.pool.start()
        except BaseException:  # no workers, no cluster to join: nothing left running
            self.dispatcher.stop()
            self.store.close()
            raise
        for spec in self.streams():
            if spec.enabled:
                self._run(spec)

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self.store is not None:
            try:
                self._close_open_incidents("service stopped")
            except SQLAlchemyError as exc:  # the next start closes them
                log.error("open incidents not closed, the store is down: %s", one_line(exc))
            self.store.close()

    @property
    def _store(self) -> Store:
        assert self.store is not None, "Service.start() first"
        return self.store

    # -- streams ----------------------------------------------------------------------
    def streams(self) -> list[StreamSpec]:
        with self._store.session() as s:
            rows = s.scalars(select(StreamRow).order_by(StreamRow.id)).all()
        return [StreamSpec.model_validate(row.spec) for row in rows]

    def stream(self, stream_id: str) -> StreamSpec:
        with self._store.session() as s:
            return StreamSpec.model_validate(stream_row(s, stream_id).spec)

    def add_stream(self, spec: StreamSpec) -> StreamSpec:
        self.validate(spec)
        with self._store.session() as s:
            if s.get(StreamRow, spec.id) is not None:
                raise StreamConflict(f"stream {spec.id!r} exists already")
            s.add(StreamRow(id=spec.id, spec=spec.model_dump(mode="json")))
        if spec.enabled:
            self._run(spec)
        self.events.publish({"kind": "streams"})
        return spec

    def update_stream(self, stream_id: str, changes: dict[str, Any]) -> StreamSpec:
        current = self.stream(stream_id)
        if "id" in changes and changes["id"] != stream_id:
            raise ConfigError("a stream's id cannot change; delete it and add a new one")
        spec = validated(StreamSpec, {**current.model_dump(), **changes})
        self.validate(spec)
        with self._store.session() as s:
            stream_row(s, stream_id).spec = spec.model_dump(mode="json")
        assert self.pool is not None
        if spec.enabled:
            self._run(spec)
        else:
            self._unrun(stream_id)
        self.events.publish({"kind": "streams"})
        return spec

    def delete_stream(self, stream_id: str) -> None:
        with self._store.session() as s:
            s.delete(stream_row(s, stream_id))
        self._unrun(stream_id)
        self._status.pop(stream_id, None)
        self._part_status.pop(stream_id, None)
        self._thumbnails.pop(stream_id, None)
        self._levels.pop(stream_id, None)
        self.signals.forget(stream_id)
        self.metrics.forget(stream_id)
        self.events.publish({"kind": "streams"})

    def validate(self, spec: StreamSpec) -> None:
        """Refuse what cannot work, with the reason: unknown scheme, missing file,
        unknown host, bad detector options."""
        check_detector_options(stream_engine_config(self.config.engine, spec))
        unknown = {k for group in spec.split or [] for k in group} - set(available_detectors())
        if unknown:
            raise ConfigError(
                f"stream {spec.id!r}: split names unknown detectors: {sorted(unknown)}"
            )
        try:
            check_url(spec.url, resolve_host=True)
        except InputError as exc:
            raise ConfigError(str(exc)) from None

    def settings(self, stream_id: str) -> dict[str, dict[str, Any]]:
        """Every detector's effective options for a stream: defaults, engine, overrides."""
        engine = stream_engine_config(self.config.engine, self.stream(stream_id))
        return {
            key: detector_config(cls, detector_options(engine, cls)).model_dump(mode="json")
            for key, cls in available_detectors().items()
        }

    def _make_pool(self) -> Workers:
        cluster = self.config.cluster
        if cluster.backend == "ray":
            try:
                from avwatch.service.ray_pool import RayPool
            except ImportError as exc:
                raise ConfigError(
                    f"cluster.backend ray needs Ray ({exc}): pip install 'avwatch[ray]'"
                ) from exc
            return RayPool(
                self.config.workers,
                self._on_message,
                on_restart=self._on_worker_restart,
                queue_frames=self.config.queue_frames,
                address=cluster.address,
                namespace=cluster.namespace,
                per_worker=cluster.streams_per_worker,
                max_count=cluster.max_workers,
                hung_after_s=cluster.hung_after_s,
                idle_after_s=cluster.idle_after_s,
            )
        return WorkerPool(
            self.config.workers or os.cpu_count() or 1,
            self._on_message,
            on_restart=self._on_worker_restart,
            queue_frames=self.config.queue_frames,
            pin=self.config.pin_workers,
        )

    def status(self, stream_id: str) -> dict[str, Any]:
        return self._status.get(stream_id, {"state": "starting"})

    def thumbnail(self, stream_id: str) -> bytes | None:
        return self._thumbnails.get(stream_id)

    def levels(self, stream_id: str) -> dict[str, Any] | None:
        return self._levels.get(stream_id)

    def workers(self) -> list[dict[str, Any]]:
        return self.pool.describe() if self.pool else []

    def _run(self, spec: StreamSpec) -> None:
        """Its monitors on the workers: one, or one per part of a split stream."""
        assert self.pool is not None
        engine = stream_engine_config(self.config.engine, spec).model_dump(mode="json")
        keys = [part_key(spec.id, n) for n in range(len(detector_parts(spec)))]
        for key in set(self._keys.get(spec.id, [])) - set(keys):
            self.pool.remove(key)  # parts it no longer has
        self._keys[spec.id] = keys
        for key in keys:
            self.pool.assign(key, spec.model_dump(mode="json"), engine)

    def _unrun(self, stream_id: str) -> None:
        assert self.pool is not None
        for key in self._keys.pop(stream_id, [stream_id]):
            self.pool.remove(key)

    def _seed_streams(self) -> None:
        """Streams of the YAML file are (re)applied at every start; the API's live on."""
        with self._store.session() as s:
            for spec in self.config.streams:
                row = s.get(StreamRow, spec.id)
                if row is None:
                    s.add(StreamRow(id=spec.id, spec=spec.model_dump(mode="json")))
                else:
                    row.spec = spec.model_dump(mode="json")

    # -- incidents --------------------------------------------------------------------
    def acknowledge(self, incident_id: str, by: str) -> IncidentRow:
        with self._store.session() as s:
            row = incident_row(s, incident_id)
            if row.acknowledged_at is None:
                row.acknowledged_at = now_utc()
                row.acknowledged_by = by
        self._notify(row)
        return row

    def _close_open_incidents(self, reason: str, keys: list[str] | None = None) -> None:
        """Incidents left open by monitors that are gone (``keys``: theirs, see
        service/parts.py; None: all) end now, and say why: the new monitor opens a fresh
        one if the defect is still there."""
        with self._store.session() as s:
            query = select(IncidentRow).where(IncidentRow.open.is_(True))
            if keys is not None:
                streams = {split_key(key)[0] for key in keys}
                query = query.where(IncidentRow.stream.in_(streams))
            rows = [
                row
                for row in s.scalars(query).all()
                if keys is None or part_key(row.stream, row.details.get("part", 0)) in keys
            ]
            for row in rows:
                row.open = False
                row.ended_at = now_utc()
                row.details = {**row.details, "closed_by": reason}
                s.add_all(alert_rows(self.config, "closed", row.to_api()))
        for row in rows:  # every open one of these streams was just closed
            self.metrics.open_incidents.labels(row.stream, row.type).set(0)
        if rows and self.dispatcher is not None:
            self.dispatcher.wake()

    # -- worker messages --------------------------------------------------------------
    def _on_message(self, message: WorkerMessage) -> None:
        if isinstance(message, IncidentUpdate | Evidence):
            self._unstored.append(message)
            self._store_pending()
        elif isinstance(message, LevelsReport):
            self._levels[message.stream] = message.levels
            self.events.publish(
                {"kind": "levels", "stream": message.stream, "levels": message.levels}
            )
        elif isinstance(message, StatusReport) and message.part:
            parts = self._part_status.setdefault(message.stream, {})
            parts[message.part] = message.status.as_dict()
        elif isinstance(message, StatusReport):
            self._stream_status(message.stream, message.status.as_dict(), dict(message.signals))
            if message.thumbnail is not None:
                self._thumbnails[message.stream] = message.thumbnail
            if self._unstored:
                self._store_pending()  # the store may be back: try again every status

    def _store_pending(self) -> None:
        """Store incident changes and evidence in the order they came. While the store
        cannot be written (disk full, read-only, database down) they wait here, in
        order, and are tried again; only past MAX_UNSTORED is the oldest given up,
        and counted."""
        while self._unstored:
            message = self._unstored[0]
            try:
                if isinstance(message, IncidentUpdate):
                    self._incident(message)
                else:
                    self._evidence(message)
            except SQLAlchemyError as exc:
                if self.store_error is None:
                    log.error("the store cannot be written (%s); keeping changes", exc)
                self.store_error = one_line(exc)[:200]
                self._spool_the_rest()
                break
            self._unstored.popleft()
            self._spooled = max(0, self._spooled - 1)
            if not self._unstored:
                if self.spool is not None and self._spool_used and self._spooled == 0:
                    self.spool.clear()
                    self._spool_used = False
                if self.store_error is not None:
                    log.warning("the store is back: every kept change is stored")
                    self.store_error = None
        while len(self._unstored) > MAX_UNSTORED:
            self._unstored.popleft()
            self._spooled = max(0, self._spooled - 1)
            self.metrics.store_dropped.inc()
        self.metrics.store_pending.set(len(self._unstored))

    def _spool_the_rest(self) -> None:
        """Kept changes not yet in the spool file go there too, if it can be written."""
        if self.spool is None or self._spooled == len(self._unstored):
            return
        if self.spool.append(itertools.islice(self._unstored, self._spooled, None)):
            self._spooled = len(self._unstored)
            self._spool_used = True

    def store_health(self) -> dict[str, Any]:
        return {
            "ok": self.store_error is None,
            "pending": len(self._unstored),
            "error": self.store_error,
            "spooled": self._spooled,
            "spool_error": None if self.spool is None else self.spool.error,
            "file_event": self.store_file_event,
        }

    def _evidence(self, message: Evidence) -> None:
        with self._store.session() as s:
            if s.get(IncidentRow, message.incident) is not None:
                s.add(
                    EvidenceRow(
                        incident=message.incident,
                        name=message.name,
                        media_type=message.media_type,
                        data=message.data,
                    )
                )

    def _stream_status(self, stream: str, status: dict[str, Any], signals: Signals) -> None:
        previous = self._status.get(stream)
        bitrate = 0.0
        if previous and status["at"] > previous["at"]:
            delta = status["bytes_read"] - previous["bytes_read"]
            if delta >= 0:
                bitrate = delta * 8 / (status["at"] - previous["at"])
        status["bitrate_bps"] = round(bitrate)
        if stream in self._part_status:  # a split stream: how its other parts are doing
            status["parts"] = {str(n): s for n, s in self._part_status[stream].items()}
        at = round(status["at"], 3)
        for name in ("bitrate_bps", "lag_s", "fps"):
            signals[name] = [[at, status[name], status[name]]]
        if "ts" in status:  # TR 101 290 errors so far in this connection
            errors = float(sum(status["ts"]["errors"].values()))
            signals["ts_errors"] = [[at, errors, errors]]
        self._status[stream] = status
        self.signals.add(stream, signals)
        event = {"kind": "status", "stream": stream, "status": status, "signals": signals}
        self.events.publish(event)
        self.metrics.stream_status(stream, status, bitrate)
        now = time.monotonic()
        try:  # upkeep that reads the store: it waits while the store is down
            if self.dispatcher is not None and now - self._outbox_checked > 1.0:
                self._outbox_checked = now  # once a second, however many streams report
                self._check_store_file()
                self.metrics.outbox_pending.set(self.dispatcher.pending())
            if now - self._evidence_pruned > EVIDENCE_PRUNE_EVERY_S:
                self._evidence_pruned = now
                self.prune_evidence()
        except SQLAlchemyError as exc:
            log.debug("store upkeep skipped: %s", exc)

    def _check_store_file(self) -> None:
        try:
            happened = self._store.check_file()
        except (OSError, sqlite3.Error) as exc:
            happened = f"the database file changed and could not be put right: {exc}"
        if happened is not None:
            log.error("%s", happened)
            self.store_file_event = f"{now_utc().isoformat(timespec='seconds')} {happened}"
            self.metrics.store_file_changes.inc()

    def prune_evidence(self) -> int:
        """Evidence retention: by age, then by total size with the newest kept."""
        deleted = self._store.prune_evidence(
            self.config.evidence_keep_s, self.config.evidence_max_bytes
        )
        if deleted:
            self.metrics.evidence_pruned.inc(deleted)
            log.warning("evidence retention: %d files deleted", deleted)
        return deleted

    def _incident(self, update: IncidentUpdate) -> None:
        event = None
        with self._store.session() as s:
            row = s.get(IncidentRow, update.id)
            was_open = row is not None and row.open
            if row is None:
                row = IncidentRow(id=update.id, stream=update.stream)
                s.add(row)
            row.update_from(update)
            if row.open and not was_open:
                event = "opened"
            elif was_open and not row.open:
                event = "closed"
            if event and not self.flaps.holds_back(row, event):
                s.add_all(alert_rows(self.config, event, row.to_api()))
            s.flush()
            open_count = s.scalar(
                select(func.count())
                .select_from(IncidentRow)
                .where(
                    IncidentRow.stream == row.stream,
                    IncidentRow.type == row.type,
                    IncidentRow.open.is_(True),
                )
            )
        self.metrics.open_incidents.labels(row.stream, row.type).set(open_count or 0)
        if event and self.dispatcher is not None:
            self.dispatcher.wake()
        if event == "opened" and not row.flapping:
            for hook in matching_hooks(self.config.hooks, row.to_api()):
                if hook.command is not None:
                    run_command_hook(hook, row.to_api())
        self._notify(row)

    def _on_worker_restart(self, worker: int, keys: list[str]) -> None:
        self.metrics.worker_restarts.inc()
        for stream in sorted({split_key(key)[0] for key in keys}):
            # Blind (in part, for a split stream) until the new worker's monitor reports.
            self._levels.pop(stream, None)
            status = {**self.status(stream), "state": "failed", "fps": 0.0}
            status["last_error"] = f"worker {worker} restarted"
            self._status[stream] = status
            self.metrics.up.labels(stream).set(0.0)
            self.events.publish({"kind": "status", "stream": stream, "status": status})
        self._close_open_incidents(f"worker {worker} restarted", keys)

    def _notify(self, row: IncidentRow) -> None:
        self.events.publish({"kind": "incident", "incident": row.to_api()})


def stream_row(s: Session, stream_id: str) -> StreamRow:
    row = s.get(StreamRow, stream_id)
    if row is None:
        raise StreamNotFound(f"no stream {stream_id!r}")
    return row


def incident_row(s: Session, incident_id: str) -> IncidentRow:
    row = s.get(IncidentRow, incident_id)
    if row is None:
        raise IncidentNotFound(f"no incident {incident_id!r}")
    return row
