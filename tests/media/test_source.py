import socket
import threading
import time

import pytest
from conftest import free_port

from avwatch.errors import InputNotFound, InputUnreachable, InputUnreadable
from avwatch.media.source import open_input


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


def test_udp_with_no_sender_fails_within_its_timeout():
    port = free_port(socket.SOCK_DGRAM)
    with pytest.raises(InputUnreachable):
        open_input(f"udp://127.0.0.1:{port}", open_timeout_s=1, read_timeout_s=1)
