"""One stream's monitor in-process: a monitor that cannot keep up says so, and
drops are counted, not mistaken for defects of the stream."""

from __future__ import annotations

import threading
import time
from typing import Any

import av
import numpy as np
import pytest
from servicekit import Messages, wait_for

from avwatch.analysis.analyzer import StreamAnalyzer
from avwatch.service.config import ServiceConfig, StreamSpec, stream_engine_config
from avwatch.service.evidence import encode_png
from avwatch.service.messages import IncidentUpdate
from avwatch.service.monitor import StreamMonitor


def slow_analysis(monkeypatch: Any, seconds_per_sample: float) -> None:
    """Every monitor's analysis takes this much longer for each sample."""
    original = StreamAnalyzer.feed_batch

    def slow_feed_batch(self: StreamAnalyzer, samples: Any) -> None:
        time.sleep(seconds_per_sample * len(samples))
        original(self, samples)

    monkeypatch.setattr(StreamAnalyzer, "feed_batch", slow_feed_batch)


@pytest.mark.parametrize(
    ("analysis", "seconds_per_sample"),
    # ~35 samples a second in full, ~3 in patrol (keyframes, audio blocks): 1.5-1.75 s
    # of work a second either way. A patrolled stream is no less watched.
    [("full", 0.05), ("patrol", 0.5)],
)
def test_slow_analysis_drops_counts_and_raises_monitor_overload(
    make, monkeypatch, analysis, seconds_per_sample
):
    path, _ = make("overload", suffix=".ts", duration_s=6)
    slow_analysis(monkeypatch, seconds_per_sample)
    messages = Messages()
    spec = StreamSpec(id="slow", url=str(path), loop=True, max_lag_s=2.0, analysis=analysis)
    engine = stream_engine_config(ServiceConfig().engine, spec)
    monitor = StreamMonitor(spec, engine, messages.emit, queue_frames=5)
    monitor.start()
    try:
        opened = wait_for("monitor_overload", lambda: messages.incidents("monitor_overload"), 15)
        wait_for(
            "an overloaded status",
            lambda: any(s.state == "overloaded" for s in messages.statuses()),
            10,
        )
    finally:
        monitor.stop()
    assert opened[0].severity == "critical"
    if analysis == "full":
        assert monitor.dropped_samples > 0
    else:  # its sparse samples fill the queue slowly: the lag opened it first
        assert opened[0].details["lag_s"] > spec.max_lag_s
    types = {incident.type for incident in messages.incidents()}
    # Samples avwatch dropped are a break in its own view, not dropped frames of the stream.
    assert "dropped_frames" not in types


def test_a_whole_input_batch_fits_the_queue(make, monkeypatch):
    """A batched input hands on a whole batch at once (batch_s): the queue takes it
    even when queue_frames is smaller, so batching alone never drops samples."""
    path, _ = make("batch_fits", suffix=".ts", duration_s=4)
    slow_analysis(monkeypatch, 0.005)  # keeps up on average, but not within a burst
    messages = Messages()
    spec = StreamSpec(id="batched", url=str(path), loop=True, batch_s=1.0)
    monitor = StreamMonitor(spec, ServiceConfig().engine, messages.emit, queue_frames=5)
    monitor.start()
    try:
        wait_for("four statuses (about 6 s)", lambda: len(messages.statuses()) >= 4, 20)
    finally:
        monitor.stop()
    assert sum(s.fps for s in messages.statuses()[1:]) > 0  # it did analyse pictures
    assert monitor.dropped_samples == 0
    assert messages.incidents("monitor_overload") == []


def test_a_remediation_command_gets_the_incident_on_stdin(tmp_path):
    from avwatch.service.config import HookSpec
    from avwatch.service.core import Service
    from avwatch.service.store import Store

    out = tmp_path / "hook.json"
    config = ServiceConfig(
        database=f"sqlite:///{tmp_path / 'h.db'}",
        hooks=[HookSpec(stream="news", type="black", command=["sh", "-c", f"cat > {out}"])],
    )
    service = Service(config)
    service.store = Store.open(service.database)
    update = IncidentUpdate(
        id="x1",
        stream="news",
        type="black",
        severity="error",
        detector="black",
        start=1.0,
        end=None,
        started_at=1_800_000_000.0,
        ended_at=None,
        open=True,
    )
    service._on_message(update)
    text = wait_for("the hook's output", lambda: out.exists() and out.read_text(), 10)
    assert '"id": "x1"' in text
    assert '"type": "black"' in text


def test_a_source_that_never_answers_is_input_lost():
    messages = Messages()
    spec = StreamSpec(id="gone", url="udp://127.0.0.1:9", input_loss_after_s=1.0)
    engine = ServiceConfig().engine.model_copy(update={"open_timeout_s": 1.0})
    monitor = StreamMonitor(spec, engine, messages.emit)
    monitor.start()
    try:
        wait_for("input_loss", lambda: messages.incidents("input_loss"), 15)
    finally:
        monitor.stop()
    assert monitor.state == "input_lost"
    assert monitor.last_error


def test_transport_findings_at_the_end_of_a_session_reach_the_incidents(make):
    """A live stream stops with a loss in its last bytes: the analyser holds those
    (it reads in batches, and dates findings by the next PCR); when the session ends
    they are still handed on, not dropped with it."""
    import socket

    import numpy as np
    from helpers import free_port, send_udp

    path, _ = make("last_bytes", suffix=".ts", duration_s=3)
    p = np.frombuffer(path.read_bytes(), np.uint8).reshape(-1, 188)
    pid = ((p[:, 1].astype(int) & 0x1F) << 8) | p[:, 2]
    values, counts = np.unique(pid, return_counts=True)
    video = np.flatnonzero(pid == values[np.argmax(counts)])
    damaged = np.delete(p, video[-5], axis=0).tobytes()  # within the last 64 KB
    assert len(damaged) - video[-5] * 188 < 64 * 1024
    port = free_port(socket.SOCK_DGRAM)
    messages = Messages()
    spec = StreamSpec(id="ends", url=f"udp://127.0.0.1:{port}", input_loss_after_s=1.5)
    monitor = StreamMonitor(spec, ServiceConfig().engine, messages.emit)
    monitor.start()
    stop = threading.Event()
    sender = threading.Timer(0.5, send_udp, args=(damaged, port, stop, 3.0, 1))
    sender.start()
    try:
        found = wait_for(
            "the continuity error in the last bytes", lambda: messages.incidents("ts_cc_error"), 15
        )
    finally:
        stop.set()
        sender.join(timeout=10)
        monitor.stop()
    assert found[0].key == f"{int(values[np.argmax(counts)]):#06x}"


def test_thumbnails_are_lossless_png():
    # Encoded at zlib's fastest level: still exactly the analysis picture.
    luma = np.random.default_rng(3).integers(0, 256, (180, 320), dtype=np.uint8)
    data = encode_png(luma)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    codec = av.CodecContext.create("png", "r")
    (frame,) = codec.decode(av.Packet(data))
    assert np.array_equal(frame.to_ndarray(format="gray"), luma)
