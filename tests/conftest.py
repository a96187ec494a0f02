"""Shared fixtures: clips made by PyAV inside the tests, with their exact truth."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from avwatch.config import EngineConfig
from avwatch.pipeline import CheckResult, check
from avwatch.synth import ClipSpec, make_clip
from avwatch.types import Incident

MakeClip = Callable[..., tuple[Path, list[dict[str, Any]]]]


@pytest.fixture(scope="session")
def clip_cache() -> dict[str, tuple[Path, list[dict[str, Any]]]]:
    return {}


@pytest.fixture(scope="session")
def make(tmp_path_factory: pytest.TempPathFactory, clip_cache: dict[str, Any]) -> MakeClip:
    """make(name, suffix=".mp4", **ClipSpec fields) -> (path, truth); cached per session.

    Test clips default to 320x180 so the suite stays fast; detectors see the
    same analysis picture size either way.
    """
    folder = tmp_path_factory.mktemp("clips")

    def _make(name: str, suffix: str = ".mp4", **fields: Any) -> tuple[Path, list[dict[str, Any]]]:
        key = name + suffix
        if key not in clip_cache:
            fields.setdefault("width", 320)
            fields.setdefault("height", 180)
            path = folder / key
            truth = make_clip(path, ClipSpec(**fields))
            clip_cache[key] = (path, truth)
        return clip_cache[key]

    return _make


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
