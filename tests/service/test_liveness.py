"""A monitor that cannot see never says it is fine: a dead thread or a hung worker
is found, reported and replaced."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any

from servicekit import Messages, wait_for

from avwatch.analysis.analyzer import StreamAnalyzer
from avwatch.service.config import ServiceConfig, StreamSpec
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
        fresh = monitor.restarted()
        [failure] = [i for i in messages.incidents("monitor_failure") if not i.open]
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
        assert fresh["alive"] and fresh["restarts"] == 1 and restarts == [0]
        wait_for("the new worker's heartbeat", lambda: pool.describe()[0]["started"], 30)
    finally:
        pool.stop()
        with contextlib.suppress(ProcessLookupError):
            os.kill(first["pid"], signal.SIGKILL)
