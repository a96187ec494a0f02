"""What the programme carries, watched live on a UDP stream: an ad break that
overruns, and captions that stop, each raised through the API within the time
configured for it."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from helpers import free_port
from servicekit import incidents, wait_for

from avwatch.lab.demo import UdpSender
from avwatch.lab.synth import ClipSpec, Defect, make_clip
from avwatch.service.config import ServiceConfig, StreamSpec
from avwatch.service.core import Service
from avwatch.service.server import BackgroundServer

LOOP_S = 16.0
REPORTED_WITHIN_S = 4.0  # after the moment the defect is due to be reported


@contextlib.contextmanager
def live(tmp_path: Path, spec: ClipSpec, **stream: Any) -> Iterator[tuple[httpx.Client, UdpSender]]:
    """The service watching ``spec`` played in a loop over UDP, the sender started once
    the monitor listens (so that the first lap is seen whole)."""
    clip = tmp_path / "live.ts"
    make_clip(clip, spec)
    port = free_port(socket.SOCK_DGRAM)
    config = ServiceConfig(
        database=f"sqlite:///{tmp_path / 'avwatch.db'}",
        workers=1,
        streams=[StreamSpec(id="live", url=f"udp://127.0.0.1:{port}", **stream)],
    )
    server = BackgroundServer(Service(config)).start()
    client = httpx.Client(base_url=server.url, timeout=10)
    sender = UdpSender(clip, port, seconds=LOOP_S)
    try:
        wait_for(
            "the monitor listening",
            lambda: client.get("/api/streams/live").json()["status"]["state"] != "starting",
            60,
        )
        time.sleep(1.0)
        sender.start()
        yield client, sender
    finally:
        sender.stop()
        client.close()
        server.stop()


def _reported_late_by(sender: UdpSender, due_s: float) -> float:
    """Seconds from when the lap being played reached ``due_s`` to now."""
    now = time.time()
    lap_start = max(t for t in sender.laps_started if t <= now - due_s)
    return now - (lap_start + due_s)


def test_an_overrunning_break_is_raised_live_and_every_cue_logged(tmp_path):
    ad_break = Defect("ad_break", 4.0, 8.0, {"overrun_s": 4.0})  # due back at 8 s, at 12 s
    spec = ClipSpec(duration_s=LOOP_S, width=320, height=180, defects=[ad_break])
    with live(tmp_path, spec) as (client, sender):

        def overrun() -> list[dict]:
            return incidents(client, stream="live", type="ad_break_overrun")

        found = wait_for("an ad_break_overrun incident", overrun, 3 * LOOP_S)[0]
        assert _reported_late_by(sender, ad_break.end + 1.0) <= REPORTED_WITHIN_S
        assert found["severity"] == "error" and found["details"]["break_start"] == 4.0
        closed = wait_for("the overrun closed", lambda: [i for i in overrun() if not i["open"]], 20)
        assert closed[-1]["end"] - closed[-1]["start"] == 4.0
        cues = incidents(client, stream="live", type="scte35_cue")
        assert {c["details"]["out"] for c in cues} == {True, False}
        assert not incidents(client, stream="live", type="scte35_late_cue")


def test_captions_that_stop_are_missing_within_the_configured_time(tmp_path):
    loss = Defect("captions_loss", 6.0, 13.0)
    spec = ClipSpec(duration_s=LOOP_S, width=320, height=180, captions=True, defects=[loss])
    with live(tmp_path, spec, detectors={"captions": {"min_duration_s": 3.0}}) as (
        client,
        sender,
    ):

        def missing() -> list[dict]:
            return incidents(client, stream="live", type="captions_missing")

        found = wait_for("a captions_missing incident", missing, 3 * LOOP_S)[0]
        assert _reported_late_by(sender, loss.start + 3.0) <= REPORTED_WITHIN_S
        closed = wait_for("captions back", lambda: [i for i in missing() if not i["open"]], 20)
        assert closed[-1]["end"] - closed[-1]["start"] == 7.0
        assert found["details"]["never_seen"] is False
