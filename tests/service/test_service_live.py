"""The service end to end, for real: a UDP stream on loopback with scheduled black
and silence, worker processes, the HTTP API, a webhook receiver, and the store
(an SQLite file, then a PostgreSQL server the test starts)."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import httpx
import pytest
from helpers import free_port
from servicekit import WebhookReceiver, incidents, postgres_server, wait_for

from avwatch.lab.demo import UdpSender
from avwatch.lab.synth import ClipSpec, Defect, make_clip
from avwatch.service.config import ServiceConfig, StreamSpec, WebhookSpec
from avwatch.service.core import Service
from avwatch.service.server import BackgroundServer

TOKEN = "test-token"
SECRET = "hook-secret"
LOOP_S = 12.0
BLACK = Defect("black", 2.0, 4.0)
SILENCE = Defect("silence", 6.0, 9.0)


@dataclass
class Running:
    server: BackgroundServer
    client: httpx.Client
    sender: UdpSender
    receiver: WebhookReceiver
    config: ServiceConfig


def _config(database: str, port: int, hook_url: str) -> ServiceConfig:
    return ServiceConfig(
        database=database,
        api_token=TOKEN,
        workers=1,
        streams=[
            StreamSpec(id="live", url=f"udp://127.0.0.1:{port}", input_loss_after_s=1.5),
        ],
        webhooks=[WebhookSpec(url=hook_url, secret=SECRET)],
        # The clip loops every 12 s: a black every 12 s would soon count as flapping.
        flap_window_s=5.0,
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'avwatch.db'}"
    else:
        with postgres_server() as url:
            yield url


@pytest.fixture(scope="module")
def running(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    clip = tmp_path_factory.mktemp("live") / "live.ts"
    make_clip(clip, ClipSpec(duration_s=LOOP_S, width=320, height=180, defects=[BLACK, SILENCE]))
    port = free_port(socket.SOCK_DGRAM)
    sender = UdpSender(clip, port, seconds=LOOP_S).start()
    receiver = WebhookReceiver()
    config = _config(database, port, receiver.url)
    server = BackgroundServer(Service(config)).start()
    client = httpx.Client(base_url=server.url, timeout=10)
    state = Running(server, client, sender, receiver, config)
    try:
        yield state
    finally:
        client.close()
        state.server.stop()  # a test may have restarted it
        sender.stop()
        receiver.close()


def _closed(client: httpx.Client, type_: str) -> list[dict]:
    return [i for i in incidents(client, stream="live", type=type_) if not i["open"]]


def _wall_seconds(incident: dict) -> float:
    from datetime import datetime

    started = datetime.fromisoformat(incident["started_at"])
    ended = datetime.fromisoformat(incident["ended_at"])
    return (ended - started).total_seconds()


def test_scheduled_black_and_silence_open_and_close_with_their_durations(running: Running):
    black = wait_for("a closed black incident", lambda: _closed(running.client, "black"), 40)[0]
    assert black["end"] - black["start"] == pytest.approx(2.0, abs=0.05)  # one frame
    assert _wall_seconds(black) == pytest.approx(2.0, abs=0.3)
    silence = wait_for("a closed silence", lambda: _closed(running.client, "silence"), 40)[0]
    assert silence["end"] - silence["start"] == pytest.approx(3.0, abs=0.05)
    assert silence["details"]["channels"] == "all"


def test_webhooks_are_signed_and_say_open_then_closed(running: Running):
    black = wait_for("a closed black incident", lambda: _closed(running.client, "black"), 40)[0]

    def delivered() -> list[str]:
        return [e["event"] for e in running.receiver.events() if e["incident"]["id"] == black["id"]]

    assert wait_for("both webhooks", lambda: len(delivered()) == 2 and delivered(), 10) == [
        "incident.opened",
        "incident.closed",
    ]
    for headers, body in running.receiver.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Avwatch-Signature"] == expected


def test_incident_carries_thumbnails_and_a_playable_clip_of_the_input(
    running: Running, tmp_path: Path
):
    # The second black: before the first, the monitor may have joined too late to hold
    # a keyframe ahead of it (a clip can only start at one).
    blacks = wait_for(
        "two closed black incidents",
        lambda: len(found := _closed(running.client, "black")) >= 2 and found,
        40,
    )
    black = blacks[0]  # newest first
    evidence = f"/api/incidents/{black['id']}/evidence"
    names = wait_for(
        "the evidence",
        lambda: (
            {
                e["name"]
                for e in running.client.get(f"/api/incidents/{black['id']}").json()["evidence"]
            }
            >= {"during.png", "clip.ts"}
            and True
        ),
        10,
    )
    assert names
    png = running.client.get(f"{evidence}/during.png")
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    clip = tmp_path / "clip.ts"
    clip.write_bytes(running.client.get(f"{evidence}/clip.ts").content)
    with av.open(str(clip)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 25  # at least a second of pictures, from a keyframe on


def test_status_and_metrics_show_the_stream_live(running: Running):
    def steady() -> dict | None:
        # 25 fps, measured over ~2 s; the first report of a stream just opened may
        # count its connection time too (14.3 fps seen when this test ran first).
        stream = running.client.get("/api/streams/live").json()
        return stream if 15 <= (stream["status"].get("fps") or 0) <= 35 else None

    stream = wait_for("the stream to report 25 fps", steady, 30)
    assert stream["status"]["state"] in ("ok", "overloaded")
    metrics = running.client.get("/metrics").text
    assert 'avwatch_stream_fps{stream="live"}' in metrics
    assert 'avwatch_detector_cpu_seconds{detector="black",stream="live"}' in metrics


def test_input_that_stops_opens_input_loss_and_recovery_closes_it(running: Running):
    wait_for("data", lambda: running.client.get("/api/streams/live").json()["status"].get("fps"))
    running.sender.paused.set()
    try:
        lost = wait_for(
            "input_loss to open",
            lambda: incidents(running.client, stream="live", type="input_loss", open=True),
            20,
        )
    finally:
        running.sender.paused.clear()
    closed = wait_for(
        "input_loss to close",
        lambda: [i for i in _closed(running.client, "input_loss") if i["id"] == lost[0]["id"]],
        30,
    )
    assert closed[0]["severity"] == "critical"
    assert _wall_seconds(closed[0]) > 1.5


def test_killed_worker_is_restarted_and_its_stream_comes_back(running: Running):
    worker = running.client.get("/healthz").json()["workers"][0]
    assert worker["streams"] == ["live"]
    os.kill(worker["pid"], signal.SIGKILL)
    killed_at = time.time()

    def restarted() -> bool:
        workers = running.client.get("/healthz").json()["workers"]
        return workers[0]["restarts"] == worker["restarts"] + 1 and workers[0]["alive"]

    wait_for("the worker to be restarted", restarted, 10)

    def fresh_data() -> bool:
        status = running.client.get("/api/streams/live").json()["status"]
        return (status.get("last_data_at") or 0) > killed_at + 0.5 and status["state"] == "ok"

    wait_for("the stream to deliver again", fresh_data, 30)


def test_restart_keeps_every_incident_and_closes_what_was_open(running: Running):
    before = {i["id"]: i for i in incidents(running.client)}
    assert before
    running.server.stop()
    running.server = BackgroundServer(Service(running.config)).start()
    running.client.base_url = httpx.URL(running.server.url)
    after = {i["id"]: i for i in incidents(running.client)}
    assert set(before) <= set(after)
    for incident_id, incident in before.items():
        if incident["open"]:
            # Closed by the stop (and saying so), unless its defect ended just before.
            assert not after[incident_id]["open"]
            assert after[incident_id]["ended_at"] is not None
            reason = after[incident_id]["details"].get("closed_by", "the defect ended")
            assert reason in ("monitor stopped", "service stopped", "the defect ended")
        else:
            assert after[incident_id]["end"] == incident["end"]


def test_acknowledge_needs_the_token(running: Running):
    # Run alone on an xdist worker, this test may come before any incident.
    incident = wait_for("an incident", lambda: incidents(running.client), 40)[0]
    path = f"/api/incidents/{incident['id']}/ack"
    assert running.client.post(path).status_code == 401
    acked = running.client.post(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert acked.status_code == 200
    assert acked.json()["acknowledged_at"] is not None
