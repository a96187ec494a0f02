"""Prometheus metrics of the service, one registry per service (tests run several)."""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

__all__ = ["ServiceMetrics"]


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.up = Gauge(
            "avwatch_stream_up", "1 while the input delivers data", ["stream"], registry=r
        )
        self.fps = Gauge(
            "avwatch_stream_fps", "Video frames analysed per second", ["stream"], registry=r
        )
        self.lag = Gauge(
            "avwatch_stream_lag_seconds", "Analysis behind real time", ["stream"], registry=r
        )
        self.bitrate = Gauge(
            "avwatch_stream_input_bitrate_bps",
            "Demuxed media bits per second",
            ["stream"],
            registry=r,
        )
        self.dropped = Gauge(
            "avwatch_stream_dropped_samples",
            "Samples avwatch itself dropped (overload), since the monitor started",
            ["stream"],
            registry=r,
        )
        self.reconnects = Gauge(
            "avwatch_stream_reconnects", "Input reconnections", ["stream"], registry=r
        )
        self.full_analysis = Gauge(
            "avwatch_stream_full_analysis",
            "1 while the stream's pictures are all decoded (full or fast, or a patrolled "
            "stream escalated or in its slice); 0 while patrolled on keyframes",
            ["stream"],
            registry=r,
        )
        self.escalations = Gauge(
            "avwatch_stream_escalations",
            "Patrol to full analysis for a sign of trouble, since the monitor started",
            ["stream"],
            registry=r,
        )
        self.full_refused = Gauge(
            "avwatch_stream_full_refused",
            "Full analysis wanted but the worker's full slots were taken, since the monitor "
            "started",
            ["stream"],
            registry=r,
        )
        self.open_incidents = Gauge(
            "avwatch_open_incidents", "Open incidents", ["stream", "type"], registry=r
        )
        self.detector_cpu = Gauge(
            "avwatch_detector_cpu_seconds",
            "CPU time spent in each detector in the stream's current session",
            ["stream", "detector"],
            registry=r,
        )
        self.worker_restarts = Counter(
            "avwatch_worker_restarts", "Workers (processes or Ray actors) replaced", registry=r
        )
        self.alerts_suppressed = Counter(
            "avwatch_alerts_suppressed", "Alerts held back as flapping", registry=r
        )
        self.evidence_pruned = Counter(
            "avwatch_evidence_pruned", "Evidence files deleted by retention", registry=r
        )
        self.store_pending = Gauge(
            "avwatch_store_pending", "Incident changes waiting for the store", registry=r
        )
        self.store_dropped = Counter(
            "avwatch_store_dropped", "Incident changes given up (store down too long)", registry=r
        )
        self.store_file_changes = Counter(
            "avwatch_store_file_changes",
            "The SQLite file deleted (and restored) or replaced under the service",
            registry=r,
        )
        self.outbox_pending = Gauge(
            "avwatch_outbox_pending", "Alerts not delivered yet", registry=r
        )
        self.workers = Gauge(
            "avwatch_workers",
            "Workers (processes or Ray actors) by state: running, pending, silent",
            ["state"],
            registry=r,
        )
        self.nodes = Gauge(
            "avwatch_nodes", "Machines (Ray nodes) the running workers are on", registry=r
        )
        self.undelivered = Gauge(
            "avwatch_worker_messages_undelivered",
            "Workers' messages the service has not handled yet: how far behind it is",
            registry=r,
        )
        self.reports_dropped = Gauge(
            "avwatch_worker_reports_dropped",
            "Status and meter reports dropped while the service was too far behind "
            "(incidents and evidence are always kept), since the service started",
            registry=r,
        )

    def workers_seen(self, workers: list[dict[str, Any]]) -> None:
        """Set from the pool's description when the metrics are read."""
        counts = dict.fromkeys(("running", "pending", "silent"), 0)
        for worker in workers:
            state = worker.get("state", "running")
            if state == "running" and not worker.get("responsive", True):
                state = "silent"
            counts[state] = counts.get(state, 0) + 1
        for state, count in counts.items():
            self.workers.labels(state).set(count)
        running = [w for w in workers if w.get("state", "running") == "running"]
        self.nodes.set(len({w.get("node") or "local" for w in running}))
        self.undelivered.set(sum(w.get("undelivered", 0) for w in workers))
        self.reports_dropped.set(sum(w.get("reports_dropped", 0) for w in workers))

    def stream_status(self, stream: str, status: dict[str, Any], bitrate_bps: float) -> None:
        self.up.labels(stream).set(1.0 if status["state"] in ("ok", "overloaded") else 0.0)
        self.fps.labels(stream).set(status["fps"])
        self.lag.labels(stream).set(status["lag_s"])
        self.bitrate.labels(stream).set(bitrate_bps)
        self.dropped.labels(stream).set(status["dropped_samples"])
        self.reconnects.labels(stream).set(status["reconnects"])
        for detector, seconds in status.get("detector_seconds", {}).items():
            self.detector_cpu.labels(stream, detector).set(seconds)
        escalation = status.get("escalation")
        full = escalation is None or escalation["analysing"] == "full"
        self.full_analysis.labels(stream).set(1.0 if full else 0.0)
        if escalation is not None:
            self.escalations.labels(stream).set(escalation["escalations"])
            self.full_refused.labels(stream).set(escalation["full_refused"])

    def forget(self, stream: str) -> None:
        for gauge in (
            self.up,
            self.fps,
            self.lag,
            self.bitrate,
            self.dropped,
            self.reconnects,
            self.full_analysis,
            self.escalations,
            self.full_refused,
        ):
            with contextlib.suppress(KeyError):  # never reported yet
                gauge.remove(stream)

    def render(self) -> bytes:
        return generate_latest(self.registry)
