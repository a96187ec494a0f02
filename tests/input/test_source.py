import os
import socket
import threading
import time

import pytest
from helpers import free_port

from avwatch.errors import InputNotFound, InputUnreachable, InputUnreadable
from avwatch.input.source import open_input, redact, redact_options
from avwatch.transport.analyser import TsAnalyzer


def test_missing_file(tmp_path):
    with pytest.raises(InputNotFound, match="no such file"):
        open_input(str(tmp_path / "nope.ts"))


def test_garbage_bytes(tmp_path):
    path = tmp_path / "garbage.ts"
    path.write_bytes(bytes(range(256)) * 400)
    with pytest.raises(InputUnreadable, match="not a media file"):
        open_input(str(path))


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(InputUnreadable):
        open_input(str(path))


def test_directory(tmp_path):
    with pytest.raises(InputUnreadable, match="directory"):
        open_input(str(tmp_path))


def test_unknown_scheme():
    with pytest.raises(InputUnreadable, match="unsupported scheme 'gopher'"):
        open_input("gopher://example.invalid/x")


def test_connection_refused_is_unreachable():
    with pytest.raises(InputUnreachable):
        open_input(f"http://127.0.0.1:{free_port()}/live.ts", open_timeout_s=2)


def test_silent_server_fails_within_its_timeout():
    # Accepts the connection, never answers: the open must give up, not hang.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(InputUnreachable, match="no answer within 1 s"):
            open_input(f"http://127.0.0.1:{port}/live.ts", open_timeout_s=1, read_timeout_s=1)
        assert time.monotonic() - started < 10  # gave up by itself, long before a hang
    finally:
        for conn in accepted:
            conn.close()
        server.close()


@pytest.mark.parametrize("analysed", [False, True])
def test_udp_with_no_sender_fails_within_its_timeout(capfd, analysed):
    port = free_port(socket.SOCK_DGRAM)
    analyzer = TsAnalyzer() if analysed else None
    with pytest.raises(InputUnreachable):
        open_input(
            f"udp://127.0.0.1:{port}", open_timeout_s=1, read_timeout_s=1, ts_analyzer=analyzer
        )
    # One error, raised: libavformat read again after the first failure, and PyAV
    # printed that second one to stderr as "exception being dropped", with a traceback.
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("seconds", [2, 5])
def test_every_packet_of_a_ts_file_reaches_the_analyser(make, tmp_path, seconds):
    """The tap analyses in batches: the last one, smaller, counts too (the file's end
    flushes it), and so does a loss in it."""
    import numpy as np

    from avwatch.analysis.check import check

    clip, _ = make(f"tap_end_{seconds}", suffix=".ts", duration_s=seconds)
    p = np.frombuffer(clip.read_bytes(), np.uint8).reshape(-1, 188)
    pid = ((p[:, 1].astype(int) & 0x1F) << 8) | p[:, 2]
    plain = np.flatnonzero((pid == 0x100) & (p[:, 3] & 0x20 == 0))  # no PCR to lose with it
    damaged = tmp_path / "late_loss.ts"
    damaged.write_bytes(np.delete(p, plain[-20], axis=0).tobytes())
    ts = check(str(damaged), None, ["black"]).summary["ts"]
    assert ts["packets"] == len(p) - 1
    assert ts["errors"] == {"ts_cc_error": 1}


def test_a_ts_file_read_through_the_tap_is_closed_with_its_container(make):
    from avwatch.input import source
    from avwatch.transport.analyser import TsAnalyzer

    clip, _ = make("tap_end_2", suffix=".ts", duration_s=2)
    container = open_input(str(clip), ts_analyzer=TsAnalyzer())
    tap = source._OWNED[id(container)]
    source.close_input(container)
    assert tap.raw.closed


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:hunter2@10.1.2.3:554/cam", "rtsp://admin:***@10.1.2.3:554/cam"),
        ("rtmp://streamkey@host/live", "rtmp://***@host/live"),
        (
            "srt://host:9000?mode=caller&passphrase=hunter2hunter2",
            "srt://host:9000?mode=caller&passphrase=***",
        ),
        ("https://cdn/x.m3u8?token=abc&v=2", "https://cdn/x.m3u8?token=***&v=2"),
        ("udp://239.1.1.1:5000?localaddr=10.0.0.2", "udp://239.1.1.1:5000?localaddr=10.0.0.2"),
        ("/media/clip:1.ts", "/media/clip:1.ts"),
    ],
    ids=["password", "user-only", "srt-passphrase", "token-query", "nothing-secret", "path"],
)
def test_redact_hides_credentials_and_secret_parameters(url, shown):
    assert redact(url) == shown
    assert redact_options({"passphrase": "x", "mode": "listener"}) == {
        "passphrase": "***",
        "mode": "listener",
    }


def test_an_error_never_shows_the_password():
    port = free_port()
    url = f"rtsp://admin:hunter2@127.0.0.1:{port}/cam?token=abc"
    with pytest.raises(InputUnreachable) as raised:
        open_input(url, open_timeout_s=2, read_timeout_s=2)
    assert "hunter2" not in str(raised.value) and "abc" not in str(raised.value)
    assert "admin:***@127.0.0.1" in str(raised.value)


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path):
    fifo = tmp_path / "feed.ts"
    os.mkfifo(fifo)  # nobody ever writes to it: opening it would wait for ever
    started = time.monotonic()
    with pytest.raises(InputUnreadable, match="not a regular file"):
        open_input(str(fifo))
    assert time.monotonic() - started < 1.0
