"""An ad break that overruns on a live UDP stream: the service raises it through
the API within the tolerance of the break's end, and logs every cue."""

from __future__ import annotations

import socket
import time

import httpx
from helpers import free_port
from servicekit import incidents, wait_for

from avwatch.lab.demo import UdpSender
from avwatch.lab.synth import ClipSpec, Defect, make_clip
from avwatch.service.config import ServiceConfig, StreamSpec
from avwatch.service.core import Service
from avwatch.service.server import BackgroundServer

LOOP_S = 16.0
BREAK = Defect("ad_break", 4.0, 8.0, {"overrun_s": 4.0})  # due back at 8 s, back at 12 s
REPORTED_WITHIN_S = 4.0  # after the break's end plus the 1 s tolerance


def test_an_overrunning_break_is_raised_live_and_every_cue_logged(tmp_path):
    clip = tmp_path / "cues.ts"
    make_clip(clip, ClipSpec(duration_s=LOOP_S, width=320, height=180, defects=[BREAK]))
    port = free_port(socket.SOCK_DGRAM)
    config = ServiceConfig(
        database=f"sqlite:///{tmp_path / 'avwatch.db'}",
        workers=1,
        streams=[StreamSpec(id="cues", url=f"udp://127.0.0.1:{port}")],
    )
    server = BackgroundServer(Service(config)).start()
    client = httpx.Client(base_url=server.url, timeout=10)
    sender = UdpSender(clip, port, seconds=LOOP_S)
    try:
        wait_for(
            "the monitor listening",
            lambda: client.get("/api/streams/cues").json()["status"]["state"] != "starting",
            60,
        )
        time.sleep(1.0)
        sender.start()

        def overrun() -> list[dict]:
            return incidents(client, stream="cues", type="ad_break_overrun")

        found = wait_for("an ad_break_overrun incident", overrun, 3 * LOOP_S)[0]
        # The lap the sender was in when it was first seen: its break was due at 8 s.
        seen_at = time.time()
        lap_start = max(t for t in sender.laps_started if t <= seen_at - BREAK.end)
        assert seen_at - (lap_start + BREAK.end + 1.0) <= REPORTED_WITHIN_S
        assert found["severity"] == "error" and found["details"]["break_start"] == BREAK.start
        closed = wait_for("the overrun closed", lambda: [i for i in overrun() if not i["open"]], 20)
        assert closed[-1]["end"] - closed[-1]["start"] == 4.0
        cues = incidents(client, stream="cues", type="scte35_cue")
        assert {c["details"]["out"] for c in cues} == {True, False}
        assert not incidents(client, stream="cues", type="scte35_late_cue")
    finally:
        sender.stop()
        client.close()
        server.stop()
