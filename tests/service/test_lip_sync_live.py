"""Lip sync on a live stream: a line-up pattern sent over UDP whose sound runs
200 ms late gives an ``av_sync`` incident through the API, and the measured
offset reaches the signals the dashboard plots."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from helpers import free_port
from servicekit import incidents, wait_for

from avwatch.lab.demo import UdpSender
from avwatch.lab.synth import ClipSpec, Defect, make_clip
from avwatch.service.config import ServiceConfig, StreamSpec
from avwatch.service.core import Service
from avwatch.service.server import BackgroundServer

# Each loop starts the detectors afresh: a loop must hold the 8 s window and the
# three agreeing estimates (a second apart) an estimate needs before it counts.
LOOP_S = 16.0


def test_late_sound_on_a_live_stream_is_an_incident_with_its_offset(tmp_path: Path):
    clip = tmp_path / "lineup.ts"
    late = Defect("av_offset", 0.0, LOOP_S, {"offset_ms": 200})
    spec = ClipSpec(
        duration_s=LOOP_S, width=320, height=180, picture="flash", sound="beeps", defects=[late]
    )
    make_clip(clip, spec)
    port = free_port(socket.SOCK_DGRAM)
    sender = UdpSender(clip, port, seconds=LOOP_S).start()
    config = ServiceConfig(
        database=f"sqlite:///{tmp_path / 'avwatch.db'}",
        api_token="test-token",
        workers=1,
        streams=[StreamSpec(id="lineup", url=f"udp://127.0.0.1:{port}")],
    )
    server = BackgroundServer(Service(config)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            # The first estimate needs a window (8 s) and the lags after it (0.5 s), and
            # two more that agree with it.
            found = wait_for(
                "an av_sync incident",
                lambda: incidents(client, stream="lineup", type="av_sync"),
                50,
            )
            assert found[0]["open"]
            assert found[0]["details"]["offset_ms"] == pytest.approx(200, abs=2)
            # Signals travel with the monitor's status, every 2 s.
            offsets = wait_for(
                "the offset among the stream's signals",
                lambda: client.get("/api/streams/lineup/signals").json().get("av_offset_ms"),
                10,
            )  # [unix time, min, max] buckets
            assert all(abs(low - 200) <= 2 and abs(high - 200) <= 2 for _, low, high in offsets)
    finally:
        server.stop()
        sender.stop()
