"""A live input for real: MPEG-TS in UDP datagrams on 127.0.0.1, checked for a bounded window."""

import socket
import threading
import time

from conftest import free_port, of_type

from avwatch.config import EngineConfig
from avwatch.pipeline import check
from avwatch.synth import Defect


def send_udp(data: bytes, port: int, stop: threading.Event, seconds_per_loop: float) -> None:
    """Send the TS in 7-packet datagrams, looping at about real time, until stopped."""
    datagrams = [data[i : i + 1316] for i in range(0, len(data), 1316)]
    pause = seconds_per_loop / len(datagrams)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        deadline = time.monotonic() + 60  # stops by itself whatever happens
        while not stop.is_set() and time.monotonic() < deadline:
            for datagram in datagrams:
                if stop.is_set():
                    return
                sock.sendto(datagram, ("127.0.0.1", port))
                time.sleep(pause)


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
    assert result.metrics["decode"]["issues"].get("demux_error") == 1
