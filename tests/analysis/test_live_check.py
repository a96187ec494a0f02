"""A live input for real: MPEG-TS in UDP datagrams on 127.0.0.1, checked for a bounded window."""

import socket
import threading
import time

from helpers import free_port, of_type, send_udp

from avwatch.analysis.check import check
from avwatch.config import EngineConfig
from avwatch.lab.synth import Defect


def test_udp_transport_stream_is_checked_for_the_requested_window(make):
    path, _ = make("udp_black", suffix=".ts", duration_s=4, defects=[Defect("black", 1.0, 2.0)])
    port = free_port(socket.SOCK_DGRAM)
    stop = threading.Event()
    sender = threading.Thread(target=send_udp, args=(path.read_bytes(), port, stop, 4.0))
    sender.start()
    try:
        result = check(
            f"udp://127.0.0.1:{port}",
            EngineConfig(open_timeout_s=5, read_timeout_s=5),
            ["black", "freeze"],
            duration_s=3.0,
        )
    finally:
        stop.set()
        sender.join(timeout=5)
    assert result.duration_s == 3.0
    # 3 s at 25 fps; a datagram lost on a loaded machine may cost a few frames.
    assert 50 <= result.video_frames <= 76
    assert result.info.container == "mpegts"
    # Joining mid-stream, the first black second may or may not be in the window; any
    # black found must be one second long, as sent.
    for incident in of_type(result, "black"):
        assert incident.end is not None and 0.9 <= incident.end - incident.start <= 1.1


def test_stream_that_stops_mid_way_ends_the_check_with_what_arrived(make):
    path, _ = make("udp_clean", suffix=".ts", duration_s=4)
    port = free_port(socket.SOCK_DGRAM)
    stop = threading.Event()
    sender = threading.Thread(target=send_udp, args=(path.read_bytes(), port, stop, 4.0))
    sender.start()
    # The source dies after 4.5 s; joining mid-GOP (a keyframe every 2 s) may cost up to 2 s.
    threading.Timer(4.5, stop.set).start()
    started = time.monotonic()
    try:
        result = check(
            f"udp://127.0.0.1:{port}",
            EngineConfig(open_timeout_s=5, read_timeout_s=2),
            ["black"],
            duration_s=30.0,
        )
    finally:
        stop.set()
        sender.join(timeout=5)
    assert time.monotonic() - started < 15  # ended by the read timeout, not by hanging
    assert 1.0 <= result.duration_s <= 4.6
    assert result.summary["decode"]["issues"].get("demux_error") == 1


def test_transport_errors_on_a_live_udp_stream_are_counted_exactly(make):
    # avwatch reads UDP with its own socket, so the TR 101 290 analyser sees the bytes:
    # three video packets lost on the way, two of them in a row, are two CC errors.
    import numpy as np

    path, _ = make("udp_cc", suffix=".ts", duration_s=3)
    p = np.frombuffer(path.read_bytes(), np.uint8).reshape(-1, 188)
    pid = ((p[:, 1].astype(int) & 0x1F) << 8) | p[:, 2]
    values, counts = np.unique(pid, return_counts=True)
    video = np.flatnonzero(pid == values[np.argmax(counts)])
    damaged = np.delete(p, video[[100, 300, 301]], axis=0).tobytes()
    port = free_port(socket.SOCK_DGRAM)
    stop = threading.Event()
    # The check listens first; the sender plays the damaged stream once, at real time.
    sender = threading.Timer(1.0, send_udp, args=(damaged, port, stop, 3.0, 1))
    sender.start()
    try:
        result = check(
            f"udp://127.0.0.1:{port}",
            EngineConfig(open_timeout_s=5, read_timeout_s=1.5),
            ["black"],
            duration_s=30,
        )
    finally:
        stop.set()
        sender.join(timeout=10)
    ts = result.summary["ts"]
    assert ts["packets"] == len(damaged) // 188
    assert ts["errors"] == {"ts_cc_error": 2}
    transport = [i for i in result.incidents if i.type.startswith("ts_")]
    assert {i.type for i in transport} == {"ts_cc_error"}
    assert sum(i.details["count"] for i in transport) == 2  # merged or not, both counted
