"""`avwatch serve` as systemd, Docker and Kubernetes stop it: SIGTERM stops the
service cleanly; a service killed outright leaves no worker behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from helpers import free_port
from servicekit import wait_for


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid``, from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def serving(make, tmp_path: Path):
    clip, _ = make("serve_signals", suffix=".ts", duration_s=4)
    config = tmp_path / "serve.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 's.db'}\nworkers: 2\n"
        f"streams:\n  - {{id: lab, url: {clip}, loop: true}}\n"
    )
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "avwatch.cli",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    workers: set[int] = set()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:

            def up() -> bool:
                try:
                    health = client.get("/healthz").json()
                except httpx.HTTPError:
                    return False
                return health["status"] == "ok" and len(health["workers"]) == 2

            wait_for("the service", up, 60)
        workers |= _children(process.pid)
        assert len(workers) >= 2  # two workers, and multiprocessing's resource tracker
        yield process, workers
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        for pid in workers | _children(process.pid):  # whatever a failure left behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()


def test_sigterm_stops_the_service_and_its_workers(serving):
    process, workers = serving
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    wait_for("no worker left", lambda: not any(_alive(pid) for pid in workers), 10)


def test_workers_of_a_killed_service_exit_by_themselves(serving):
    process, workers = serving
    process.kill()  # SIGKILL: no handler runs, nothing is stopped
    process.wait(10)
    wait_for("no worker left", lambda: not any(_alive(pid) for pid in workers), 15)
