"""Real recordings out of Debian packages: fetched once, cached, clear errors otherwise."""

import shutil

import pytest

from avwatch.errors import AvwatchError
from avwatch.lab.realmedia import SPEECH, fetch

HAS_APT = bool(shutil.which("apt-get") and shutil.which("dpkg"))


@pytest.mark.skipif(not HAS_APT, reason="needs apt-get and dpkg")
def test_first_fetch_extracts_the_file_and_the_second_reads_the_cache(tmp_path):
    # An empty cache: the path a fresh machine takes (the suite turns a leaked pipe into an error).
    try:
        first = fetch(SPEECH, tmp_path)
    except AvwatchError as exc:
        pytest.skip(f"the package mirror cannot be reached: {exc}")
    assert first.parent == tmp_path and first.stat().st_size > 100_000
    assert first.read_bytes()[:4] == b"RIFF"
    assert not list(tmp_path.glob("*.part"))
    assert fetch(SPEECH, tmp_path) == first


@pytest.mark.skipif(not HAS_APT, reason="needs apt-get and dpkg")
def test_a_package_that_does_not_exist_is_a_clear_error(tmp_path):
    with pytest.raises(AvwatchError, match="no-such-package-avwatch: apt-get download failed"):
        fetch(("no-such-package-avwatch", "usr/share/x.wav"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_without_apt_get_the_error_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AvwatchError, match="needs apt-get and dpkg"):
        fetch(SPEECH, tmp_path / "cache")
