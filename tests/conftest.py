"""Shared fixtures: clips made by PyAV inside the tests, with their exact truth."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ARTIFACTS, MakeClip

from avwatch.lab.synth import ClipSpec, make_clip

# The groups that take longest (CI's --durations), started first: each process takes
# the next group when it is done, so a long group begun last would run on alone.
LONGEST_GROUPS = (
    "test_evaluate",
    "test_soak",
    "ray",
    "test_av_sync",
    "test_plant",
    "test_service_live",
    "test_programme_live",
    "test_lip_sync_live",
    "test_dashboard",
)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With ``-n 2 --dist loadgroup`` (make test), a file's tests go to one process, so
    that its module fixtures (clips, servers) are made once; tests marked with a
    group of their own (Ray's) keep it. The longest groups go first."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.path.stem))

    def rank(item: pytest.Item) -> int:
        group = item.get_closest_marker("xdist_group").args[0]  # type: ignore[union-attr]
        return LONGEST_GROUPS.index(group) if group in LONGEST_GROUPS else len(LONGEST_GROUPS)

    items.sort(key=rank)  # stable: a group's own order is kept


@pytest.fixture(scope="session")
def clip_cache() -> dict[str, tuple[Path, list[dict[str, Any]]]]:
    return {}


@pytest.fixture(scope="session")
def make(tmp_path_factory: pytest.TempPathFactory, clip_cache: dict[str, Any]) -> MakeClip:
    """make(name, suffix=".mp4", **ClipSpec fields) -> (path, truth); cached per session.

    A clip is cached by its whole spec, not its name: two tests that give one name
    to different clips get two files. Test clips default to 320x180 so the suite
    stays fast; detectors see the same analysis picture size either way.
    """
    folder = tmp_path_factory.mktemp("clips")

    def _make(name: str, suffix: str = ".mp4", **fields: Any) -> tuple[Path, list[dict[str, Any]]]:
        fields.setdefault("width", 320)
        fields.setdefault("height", 180)
        spec = ClipSpec(**fields)
        key = f"{suffix} {spec!r}"
        if key not in clip_cache:
            digest = hashlib.sha1(key.encode()).hexdigest()[:10]
            path = folder / f"{name}-{digest}{suffix}"
            clip_cache[key] = (path, make_clip(path, spec))
        return clip_cache[key]

    return _make


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium driven by Playwright (no browser download)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.fail(f"no chromium at {chromium} (Debian: apt-get install chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        # --no-sandbox: CI runs as root, where chromium's sandbox cannot start.
        launched = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()
