"""Components for the service tests: a webhook receiver and a PostgreSQL server, both
real, on loopback, both stopping by themselves; and a recording worker pool for API
tests that need no stream monitored, and a collector of what a monitor emits."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from helpers import free_port

from avwatch.service.messages import IncidentUpdate, StatusReport, StreamStatus, WorkerMessage


class Messages:
    """What a monitor emits, collected from its threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.all: list[WorkerMessage] = []

    def emit(self, message: WorkerMessage) -> None:
        with self.lock:
            self.all.append(message)

    def incidents(self, type_: str | None = None) -> list[IncidentUpdate]:
        with self.lock:
            return [
                m for m in self.all if isinstance(m, IncidentUpdate) and type_ in (None, m.type)
            ]

    def statuses(self) -> list[StreamStatus]:
        with self.lock:
            return [m.status for m in self.all if isinstance(m, StatusReport)]


class RecordingPool:
    """The service's ``Workers`` without processes: records what it was told to run."""

    def __init__(self) -> None:
        self.running: dict[str, dict[str, Any]] = {}  # stream id -> its spec
        self.removed: list[str] = []

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 10.0) -> None:
        self.running.clear()

    def assign(self, stream_id: str, spec: dict[str, Any], engine: dict[str, Any]) -> int:
        self.running[stream_id] = spec
        return 0

    def remove(self, stream_id: str) -> None:
        self.running.pop(stream_id, None)
        self.removed.append(stream_id)

    def describe(self) -> list[dict[str, Any]]:
        streams = sorted(self.running)
        return [{"index": 0, "pid": None, "alive": True, "streams": streams, "restarts": 0}]


class WebhookReceiver:
    """Records every POST; answers ``fail_with`` (e.g. 503) while it is set. With
    ``check``, a body the check finds fault with (it returns why) is refused with 400
    and its fault kept in ``refused``, as a real service would refuse it."""

    def __init__(self, check: Callable[[Any], str | None] | None = None) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.refused: list[str] = []
        self.fail_with: int | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.fail_with is not None:
                    self.send_response(receiver.fail_with)
                    self.end_headers()
                    return
                fault = None if check is None else receiver._fault(check, body)
                if fault is not None:
                    receiver.refused.append(fault)
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver.received.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @staticmethod
    def _fault(check: Callable[[Any], str | None], body: bytes) -> str | None:
        try:
            return check(json.loads(body))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return f"{exc.__class__.__name__}: {exc}"

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(
    what: str, probe: Callable[[], Any], timeout: float = 30.0, every: float = 0.25
) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def incidents(client: httpx.Client, **query: Any) -> list[dict[str, Any]]:
    response = client.get("/api/incidents", params={"limit": 1000, **query})
    response.raise_for_status()
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


class PostgresServer:
    """A throw-away PostgreSQL server in a temporary directory, that a test may stop and
    start again (a database going down under the service).

    PostgreSQL refuses to run as root: as root, the server runs as the ``postgres``
    user that Debian's package creates.
    """

    def __init__(self) -> None:
        bin_dir = _postgres_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        self.bin_dir = bin_dir
        self.as_user: list[str] = []
        self.data = Path(tempfile.mkdtemp(prefix="avwatch-pg-"))
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.data, "postgres")
        self.port = free_port()
        self.url = f"postgresql+psycopg://avwatch@127.0.0.1:{self.port}/postgres"
        self._run("initdb", "-D", str(self.data / "db"), "-A", "trust", "-U", "avwatch")

    def _run(self, tool: str, *args: str) -> None:
        command = [*self.as_user, str(self.bin_dir / tool), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.data} -c fsync=off"
        db, log = str(self.data / "db"), str(self.data / "log")
        self._run("pg_ctl", "-D", db, "-o", options, "-w", "-l", log, "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data / "db"), "-m", "immediate", "stop")


@contextlib.contextmanager
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # stopped by the test
            server.stop()
        shutil.rmtree(server.data, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL server; yields its URL."""
    with postgres() as server:
        yield server.url


def black_update(incident: str, *, open_: bool) -> IncidentUpdate:
    """A black incident of stream "news", opening or closing now."""
    now = time.time()
    return IncidentUpdate(
        id=incident,
        stream="news",
        type="black",
        severity="error",
        detector="black",
        start=1.0,
        end=None if open_ else 2.0,
        started_at=now - 1,
        ended_at=None if open_ else now,
        open=open_,
    )


def ok_status() -> StatusReport:
    """A status of stream "news": any message makes the service try kept changes again."""
    now = time.time()
    return StatusReport("news", StreamStatus("ok", 25.0, 0.1, 1000, 0, 0, now, "", now))
