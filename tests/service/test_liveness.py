"""A monitor that cannot see never says it is fine: a dead thread or a hung worker
is found, reported and replaced."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any

from servicekit import Messages, RecordingPool, ok_status, wait_for

from avwatch.analysis.analyzer import StreamAnalyzer
from avwatch.service.config import ServiceConfig, StreamSpec
from avwatch.service.core import Service
from avwatch.service.monitor import StreamMonitor
from avwatch.service.workers import WorkerPool


def test_a_dead_analysis_thread_is_a_failure_and_the_monitor_comes_back(make, monkeypatch):
    path, _ = make("dies", suffix=".ts", duration_s=4)
    original = StreamAnalyzer.feed_batch
    calls = {"n": 0}

    def feed_batch_that_breaks_once(self: StreamAnalyzer, samples: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 5:  # input turned to garbage the analysis cannot take
            raise ValueError("garbage")
        original(self, samples)

    monkeypatch.setattr(StreamAnalyzer, "feed_batch", feed_batch_that_breaks_once)
    messages = Messages()
    spec = StreamSpec(id="dies", url=str(path), loop=True)
    monitor = StreamMonitor(spec, ServiceConfig().engine, messages.emit)
    monitor.start()
    fresh = None
    try:
        wait_for("the failure", lambda: monitor.failure, 20)
        assert "the analysis thread died: ValueError: garbage" in (monitor.failure or "")
        # Said at once, before any restart: the stream is blind, not fine.
        [opened] = messages.incidents("monitor_failure")
        assert opened.open and "ValueError: garbage" in opened.details["reason"]
        assert messages.statuses()[-1].state == "failed"
        fresh = monitor.restarted()
        [failure] = [i for i in messages.incidents("monitor_failure") if not i.open]
        assert failure.id == opened.id
        assert failure.details["restarted"] is True and failure.severity == "critical"
        assert failure.started_at <= failure.ended_at  # type: ignore[operator]
        seen = len(messages.statuses())
        wait_for(
            "the new monitor analysing",
            lambda: any(s.fps > 0 for s in messages.statuses()[seen:]),
            20,
        )
        assert fresh.failure is None
    finally:
        (fresh or monitor).stop()


def test_a_hung_worker_is_killed_and_replaced():
    restarts: list[int] = []
    pool = WorkerPool(1, lambda m: None, on_restart=lambda i, s: restarts.append(i), hung_after_s=3)
    pool.start()
    first = pool.describe()[0]
    try:
        wait_for("the worker's first heartbeat", lambda: pool.describe()[0]["started"], 30)
        os.kill(first["pid"], signal.SIGSTOP)  # a stuck driver, a swapped-out machine
        stopped_at = time.monotonic()
        wait_for("a new worker", lambda: pool.describe()[0]["pid"] != first["pid"], 20)
        assert time.monotonic() - stopped_at < 3 + 5  # silent for 3 s, then killed
        fresh = pool.describe()[0]
        assert fresh["alive"] and fresh["restarts"] == 1
        wait_for("the service told of the restart", lambda: restarts == [0], 5)
        wait_for("the new worker's heartbeat", lambda: pool.describe()[0]["started"], 30)
    finally:
        pool.stop()
        with contextlib.suppress(ProcessLookupError):
            os.kill(first["pid"], signal.SIGKILL)


def test_streams_of_a_restarted_worker_are_failed_until_they_report_again(tmp_path):
    config = ServiceConfig(
        database=f"sqlite:///{tmp_path / 'a.db'}",
        streams=[StreamSpec(id="news", url="udp://127.0.0.1:5000")],
    )
    service = Service(config, pool=RecordingPool())
    service.start()
    try:
        service._on_message(ok_status())
        assert service.status("news")["state"] == "ok"
        service._on_worker_restart(0, ["news"])  # what the pool calls for a dead worker
        assert service.status("news")["state"] == "failed"
        assert service.status("news")["last_error"] == "worker 0 restarted"
        service._on_message(ok_status())  # the new monitor reports
        assert service.status("news")["state"] == "ok"
    finally:
        service.stop()


def test_a_worker_is_not_called_hung_while_the_service_is_slow_to_take_its_messages(make):
    """The service stuck in its store for longer than a worker may be silent: the
    worker's heartbeats are read all the same, and it is left alone."""
    path, _ = make("busy", suffix=".ts", duration_s=4)
    handled: list[Any] = []

    def busy_service(message: Any) -> None:
        if not handled:
            time.sleep(6)  # evidence retention deleting thousands of files
        handled.append(message)

    restarts: list[int] = []
    pool = WorkerPool(1, busy_service, on_restart=lambda i, s: restarts.append(i), hung_after_s=3)
    pool.start()
    first = pool.describe()[0]
    try:
        wait_for("the worker's first heartbeat", lambda: pool.describe()[0]["started"], 30)
        spec = StreamSpec(id="busy", url=str(path), loop=True)
        pool.assign(
            "busy", spec.model_dump(mode="json"), ServiceConfig().engine.model_dump(mode="json")
        )
        wait_for("the service stuck on a message", lambda: pool.describe()[0]["undelivered"], 30)
        wait_for("the service through it", lambda: len(handled) > 1, 30)
        worker = pool.describe()[0]
        assert worker["pid"] == first["pid"] and worker["restarts"] == 0 and restarts == []
    finally:
        pool.stop()
