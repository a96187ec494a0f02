"""A patrolled stream live: keyframes until trouble, then full analysis within the
worker's full slots; input loss as soon as in full; the tier on status and /metrics."""

from __future__ import annotations

import socket
import threading
import time
from fractions import Fraction

from helpers import free_port, send_udp
from servicekit import Messages, wait_for

from avwatch.analysis.escalation import FullSlots
from avwatch.config import Escalation
from avwatch.lab.synth import Defect
from avwatch.service.config import ServiceConfig, StreamSpec
from avwatch.service.metrics import ServiceMetrics as Metrics
from avwatch.service.monitor import StreamMonitor

BROADCAST = {"preset": "veryfast", "noise_levels": 2, "fps": Fraction(25), "suffix": ".ts"}


def patrol_engine(**escalation: float):
    return ServiceConfig().engine.model_copy(
        update={"analysis": "patrol", "escalation": Escalation(rotate_every_s=0, **escalation)}
    )


def test_black_escalates_a_patrolled_stream_to_full(make):
    path, _ = make("patrol_black", duration_s=12, **BROADCAST, defects=[Defect("black", 4, 10)])
    messages = Messages()
    slots = FullSlots(1)
    spec = StreamSpec(id="patrolled", url=str(path), loop=True)
    monitor = StreamMonitor(spec, patrol_engine(escalate_s=3), messages.emit, slots=slots)
    monitor.start()
    try:
        wait_for("black", lambda: messages.incidents("black"), 20)
        escalated = wait_for(
            "a status in full",
            lambda: [
                s for s in messages.statuses() if (s.escalation or {}).get("analysing") == "full"
            ],
            10,
        )
        # escalate_s after the last sign, it is patrolled again, the slot given back.
        wait_for(
            "patrol again",
            lambda: messages.statuses()[-1].escalation["analysing"] == "patrol",
            20,
        )
    finally:
        monitor.stop()
    status = escalated[0]
    assert status.analysis == "patrol"
    assert status.escalation["escalations"] >= 1
    assert "black" in status.escalation["why"]
    assert status.escalation["lip_sync"] == "judged"
    assert slots.in_use == 0
    # Pictures in full after the escalation: far more than one keyframe per 2 s.
    assert max(s.fps for s in messages.statuses()) > 10


def test_with_no_full_slot_free_the_patrol_still_finds_it(make):
    path, _ = make("patrol_black", duration_s=12, **BROADCAST, defects=[Defect("black", 4, 10)])
    messages = Messages()
    spec = StreamSpec(id="no_slot", url=str(path), loop=True)
    monitor = StreamMonitor(spec, patrol_engine(), messages.emit, slots=FullSlots(0))
    monitor.start()
    try:
        wait_for("black", lambda: messages.incidents("black"), 20)
        refused = wait_for(
            "a refusal on status",
            lambda: [s for s in messages.statuses() if s.escalation["full_refused"]],
            5,
        )
    finally:
        monitor.stop()
    status = refused[-1]
    assert status.escalation["escalations"] == 0
    assert status.escalation["lip_sync"] == "not judged"
    assert max(s.fps for s in messages.statuses()) <= 1.5  # keyframes only


def test_a_patrolled_input_that_stops_is_input_loss_in_the_same_time(make):
    path, _ = make("patrol_udp", duration_s=6, **BROADCAST)
    port = free_port(socket.SOCK_DGRAM)
    messages = Messages()
    spec = StreamSpec(id="cut", url=f"udp://127.0.0.1:{port}", input_loss_after_s=1.5)
    monitor = StreamMonitor(spec, patrol_engine(), messages.emit)
    monitor.start()
    stop = threading.Event()
    sender = threading.Thread(target=send_udp, args=(path.read_bytes(), port, stop, 6.0, 1))
    sender.start()
    try:
        wait_for("data", lambda: monitor.last_data_wall is not None, 10)
        sender.join(timeout=15)
        last_data = monitor.last_data_wall
        assert last_data is not None
        (lost,) = wait_for("input_loss", lambda: messages.incidents("input_loss"), 10)
        noticed = time.time()
    finally:
        stop.set()
        sender.join(timeout=10)
        monitor.stop()
    # As in full: input_loss_after_s after the last data, give or take the status beat.
    assert noticed - last_data < 1.5 + 1.5
    assert lost.started_at == last_data


def test_metrics_show_the_tier_and_count_escalations():
    metrics = Metrics()
    base = {"state": "ok", "fps": 1.0, "lag_s": 0.1, "dropped_samples": 0, "reconnects": 0}
    escalation = {"analysing": "full", "escalations": 3, "full_refused": 1, "rotations": 0}
    metrics.stream_status("p", {**base, "escalation": escalation}, 1e6)
    metrics.stream_status("f", base, 1e6)
    text = metrics.render().decode()
    assert 'avwatch_stream_escalations{stream="p"} 3.0' in text
    assert 'avwatch_stream_full_refused{stream="p"} 1.0' in text
    assert 'avwatch_stream_full_analysis{stream="p"} 1.0' in text
    assert 'avwatch_stream_full_analysis{stream="f"} 1.0' in text
    metrics.stream_status("p", {**base, "escalation": {**escalation, "analysing": "patrol"}}, 0)
    assert 'avwatch_stream_full_analysis{stream="p"} 0.0' in metrics.render().decode()
