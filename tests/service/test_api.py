"""The HTTP API on loopback: stream CRUD, auth, and clear 4xx for bad input.

No stream is monitored here: the service runs on a recording pool, not worker
processes (tests/service/test_service_live.py runs the whole thing)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servicekit import RecordingPool, incidents

from avwatch.input.source import input_supported
from avwatch.lab.synth import ClipSpec, make_clip
from avwatch.service.config import ServiceConfig
from avwatch.service.core import Service
from avwatch.service.server import BackgroundServer

TOKEN = "api-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def pool() -> RecordingPool:
    return RecordingPool()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, pool: RecordingPool) -> Iterator[httpx.Client]:
    folder = tmp_path_factory.mktemp("api")
    config = ServiceConfig(database=f"sqlite:///{folder / 'api.db'}", api_token=TOKEN)
    service = Service(config, pool=pool)
    with BackgroundServer(service) as server, httpx.Client(base_url=server.url) as client:
        yield client


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api-clip") / "loop.ts"
    make_clip(path, ClipSpec(duration_s=2, width=160, height=90))
    return path


def test_stream_lifecycle_create_read_change_delete(
    api: httpx.Client, pool: RecordingPool, clip: Path
):
    created = api.post(
        "/api/streams",
        json={"id": "cam-1", "url": str(clip), "loop": True, "detectors": {"black": {}}},
        headers=AUTH,
    )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "cam-1"
    assert [s["id"] for s in api.get("/api/streams").json()] == ["cam-1"]
    assert pool.running["cam-1"]["url"] == str(clip)  # put on a worker
    changed = api.patch("/api/streams/cam-1", json={"name": "Camera 1"}, headers=AUTH)
    assert changed.status_code == 200
    assert api.get("/api/streams/cam-1").json()["name"] == "Camera 1"
    assert pool.running["cam-1"]["name"] == "Camera 1"  # re-run with the change
    assert (
        api.post("/api/streams", json={"id": "cam-1", "url": str(clip)}, headers=AUTH).status_code
        == 409
    )
    assert api.delete("/api/streams/cam-1", headers=AUTH).status_code == 204
    assert "cam-1" not in pool.running and "cam-1" in pool.removed
    assert api.get("/api/streams/cam-1").status_code == 404
    assert api.delete("/api/streams/cam-1", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"id": "x", "url": "gopher://example.org/feed"}, "unsupported scheme 'gopher'"),
        (
            {"id": "x", "url": "rtmp://no-such-host.invalid/live"},
            "host 'no-such-host.invalid' not found",
        ),
        ({"id": "x", "url": "/nowhere/feed.ts"}, "no such file"),
        (
            {"id": "x", "url": "udp://127.0.0.1:5000", "detectors": {"blak": {}}},
            "unknown detectors: blak",
        ),
        (
            {
                "id": "x",
                "url": "udp://127.0.0.1:5000",
                "detectors": {"black": {"min_duration_s": -1}},
            },
            "min_duration_s",
        ),
        ({"id": "Bad Id", "url": "udp://127.0.0.1:5000"}, "stream id"),
        ({"id": "x", "url": "udp://127.0.0.1:5000", "colour": "red"}, "colour"),
    ],
    ids=[
        "unknown-scheme",
        "unknown-host",
        "missing-file",
        "unknown-detector",
        "bad-option",
        "bad-id",
        "typo",
    ],
)
def test_bad_stream_is_refused_with_the_reason(api: httpx.Client, body: dict, says: str):
    response = api.post("/api/streams", json=body, headers=AUTH)
    assert response.status_code == 422
    assert says in response.text
    assert api.get("/api/streams/x").status_code == 404


def test_garbage_body_is_a_client_error(api: httpx.Client):
    response = api.post(
        "/api/streams",
        content=b"\x00\xffnot json",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 422


def test_changes_need_the_token_reads_do_not(api: httpx.Client):
    body = {"id": "y", "url": "udp://127.0.0.1:5000"}
    assert api.post("/api/streams", json=body).status_code == 401
    assert (
        api.post("/api/streams", json=body, headers={"Authorization": "Bearer wrong"}).status_code
        == 401
    )
    assert api.get("/api/streams").status_code == 200
    assert api.get("/healthz").json()["status"] == "ok"


def test_incident_queries_validate_their_parameters(api: httpx.Client):
    assert api.get("/api/incidents", params={"limit": 0}).status_code == 422
    assert api.get("/api/incidents", params={"since": "yesterday"}).status_code == 422
    assert incidents(api, stream="nobody") == []
    assert api.get("/api/incidents/does-not-exist").status_code == 404


def test_openapi_is_published(api: httpx.Client):
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/api/streams", "/api/incidents", "/api/incidents/{incident_id}/ack"} <= set(paths)


def test_without_a_configured_token_changes_are_disabled(tmp_path: Path):
    config = ServiceConfig(database=f"sqlite:///{tmp_path / 'x.db'}")
    with (
        BackgroundServer(Service(config, pool=RecordingPool())) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        response = client.post("/api/streams", json={"id": "z", "url": "udp://127.0.0.1:5000"})
        assert response.status_code == 403
        assert "no api_token" in response.text


def test_srt_is_taken_through_the_gateway_when_pyav_lacks_it(api: httpx.Client):
    # PyPI's PyAV wheels carry no libsrt; imageio-ffmpeg's CLI does (input/gateway.py).
    response = api.post(
        "/api/streams", json={"id": "s", "url": "srt://127.0.0.1:9000"}, headers=AUTH
    )
    if input_supported("srt"):
        assert response.status_code == 201
        assert api.delete("/api/streams/s", headers=AUTH).status_code == 204
    else:
        assert response.status_code == 422
        assert "srt is not supported by this FFmpeg build" in response.text


def test_private_reads_take_the_token_in_the_header_or_the_query(tmp_path: Path):
    config = ServiceConfig(
        database=f"sqlite:///{tmp_path / 'p.db'}", api_token=TOKEN, public_reads=False
    )
    with (
        BackgroundServer(Service(config, pool=RecordingPool())) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        assert client.get("/api/streams").status_code == 401
        assert client.get("/api/streams", params={"token": "wrong"}).status_code == 401
        assert client.get("/api/streams", headers=AUTH).status_code == 200
        assert client.get("/api/streams", params={"token": TOKEN}).status_code == 200


def test_plots_are_what_the_detectors_and_the_monitor_declare(api: httpx.Client):
    plots = api.get("/api/plots").json()
    by_signal = {name: plot for plot in plots for name in plot["signals"]}
    # A detector's own declaration, with the setting its target line reads.
    loudness = by_signal["short_term_lufs"]
    assert loudness["detector"] == "loudness" and loudness["target_setting"] == "target_lufs"
    assert by_signal["black_ratio"]["min"] == 0.0 and by_signal["black_ratio"]["max"] == 1.0
    # The monitor's own signals come last, with no detector.
    assert [p["signals"] for p in plots[-3:]] == [["bitrate_bps"], ["ts_errors"], ["lag_s"]]
    assert {p["detector"] for p in plots[-3:]} == {None}


def test_a_token_in_any_characters_is_an_answer_not_a_server_error(api: httpx.Client):
    body = {"id": "w", "url": "udp://127.0.0.1:5000"}
    for token in ("bearer-é-ü", "\u2603" * 40):
        headers = {"Authorization": f"Bearer {token}".encode()}
        assert api.post("/api/streams", json=body, headers=headers).status_code == 401
        assert api.get("/api/streams", params={"token": token}).status_code == 200  # public


def test_query_numbers_are_bounded(api: httpx.Client):
    response = api.get("/api/incidents", params={"offset": "99999999999999999999999"})
    assert response.status_code == 422, response.text


def test_an_empty_token_is_no_token(tmp_path: Path):
    config = ServiceConfig(
        database=f"sqlite:///{tmp_path / 'e.db'}", api_token="", public_reads=False
    )
    service = Service(config, pool=RecordingPool())
    with BackgroundServer(service) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/api/streams", params={"token": ""}).status_code == 401
        assert client.get("/api/streams", params={"token": "x"}).status_code == 401
        body = {"id": "e", "url": "udp://127.0.0.1:5000"}
        response = client.post("/api/streams", json=body, headers={"Authorization": "Bearer x"})
        assert response.status_code == 403 and "no api_token" in response.text


def _raw_post(url: str, head: str) -> bytes:
    """Send only the head of a POST (its body never comes) and read the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head.encode())
        sock.shutdown(socket.SHUT_WR)  # no body will follow
        return sock.recv(65536)


def test_a_change_is_refused_before_its_body_is_read(api: httpx.Client):
    url = str(api.base_url).rstrip("/")
    head = (
        "POST /api/streams HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 200000000\r\n\r\n"
    )
    # No token: refused at once, without waiting for 200 MB.
    assert _raw_post(url, head).startswith(b"HTTP/1.1 401")
    # With the token, a body over the limit is refused by its length alone.
    authorised = head.replace("Host: x\r\n", f"Host: x\r\nAuthorization: Bearer {TOKEN}\r\n")
    assert _raw_post(url, authorised).startswith(b"HTTP/1.1 413")


def test_a_chunked_body_over_the_limit_is_cut_off(api: httpx.Client):
    def chunks():
        for _ in range(3):
            yield b" " * (600 * 1024)

    response = api.post(
        "/api/streams",
        content=chunks(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_readers_never_see_credentials_of_a_stream(api: httpx.Client, pool: RecordingPool):
    body = {
        "id": "secret-cam",
        "url": "rtsp://admin:hunter2@127.0.0.1:8554/cam?token=abc",
        "input_options": {"passphrase": "pass-phrase-1", "rtsp_transport": "tcp"},
    }
    assert api.post("/api/streams", json=body, headers=AUTH).status_code == 201
    try:
        for response in (api.get("/api/streams"), api.get("/api/streams/secret-cam")):
            assert "hunter2" not in response.text and "abc" not in response.text
            assert "pass-phrase-1" not in response.text
        shown = api.get("/api/streams/secret-cam").json()
        assert shown["url"] == "rtsp://admin:***@127.0.0.1:8554/cam?token=***"
        assert shown["input_options"] == {"passphrase": "***", "rtsp_transport": "tcp"}
        # A change keeps the real URL: the redaction is only what readers see.
        assert api.patch("/api/streams/secret-cam", json={"name": "Cam"}, headers=AUTH).is_success
        assert pool.running["secret-cam"]["url"] == body["url"]
    finally:
        assert api.delete("/api/streams/secret-cam", headers=AUTH).status_code == 204
