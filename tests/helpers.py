"""Helpers the tests share: run a check, pick incidents, compare with truth, loopback I/O.

A plain module (imported as ``helpers``), not conftest: conftest holds fixtures only.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from avwatch.analysis.check import CheckResult, check
from avwatch.config import EngineConfig
from avwatch.types import Incident

# Screenshots and other files a test keeps for people to look at.
ARTIFACTS = Path(os.environ.get("AVWATCH_ARTIFACTS", ".cache/artifacts"))

MakeClip = Callable[..., tuple[Path, list[dict[str, Any]]]]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(path: Path, keys: Iterable[str] | None = None, **config: Any) -> CheckResult:
    """Check ``path`` with detectors ``keys``; ``config`` are EngineConfig fields."""
    return check(str(path), EngineConfig(**config), keys)


def of_type(result: CheckResult, type_: str) -> list[Incident]:
    return [i for i in result.incidents if i.type == type_]


def assert_matches(
    found: list[Incident], truth: list[dict[str, Any]], type_: str, tolerance_s: float
) -> None:
    """One found incident per truth event of ``type_``, start and end within tolerance."""
    expected = [t for t in truth if t["type"] == type_]
    got = [(round(i.start, 3), None if i.end is None else round(i.end, 3)) for i in found]
    assert len(found) == len(expected), f"{type_}: expected {expected}, found {got}"
    for incident, event in zip(sorted(found, key=lambda i: i.start), expected, strict=True):
        assert incident.end is not None
        assert abs(incident.start - event["start"]) <= tolerance_s, (type_, got, event)
        assert abs(incident.end - event["end"]) <= tolerance_s, (type_, got, event)


def send_udp(
    data: bytes, port: int, stop: threading.Event, seconds_per_loop: float, loops: int = 1000
) -> None:
    """Send the TS in 7-packet datagrams at about real time, ``loops`` times or until stopped."""
    datagrams = [data[i : i + 1316] for i in range(0, len(data), 1316)]
    pause = seconds_per_loop / len(datagrams)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        deadline = time.monotonic() + 60  # stops by itself whatever happens
        for _ in range(loops):
            if stop.is_set() or time.monotonic() > deadline:
                return
            for datagram in datagrams:
                if stop.is_set():
                    return
                sock.sendto(datagram, ("127.0.0.1", port))
                time.sleep(pause)
