"""The demo's plant: real recordings in colour, and the synthetic channels when the
recordings cannot be had."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import free_port

from avwatch.errors import AvwatchError
from avwatch.lab.corpus import media_cache
from avwatch.lab.realmedia import HELD_OUT, fetch
from avwatch.lab.synth import ClipSpec, Defect, make_clip


def test_a_recording_keeps_its_colour_and_black_is_black(tmp_path):
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        pytest.skip("needs apt-get and dpkg")
    try:
        film = str(fetch(HELD_OUT["film"], media_cache()))
    except AvwatchError as exc:
        pytest.skip(f"the package mirror cannot be reached: {exc}")
    clip = tmp_path / "film.ts"
    spec = ClipSpec(
        duration_s=3.0,
        width=320,
        height=176,
        picture_file=film,
        colour=True,
        defects=[Defect("black", 1.0, 2.0)],
    )
    truth = make_clip(clip, spec)
    assert ("black", 1.0, 2.0) in [(e["type"], e["start"], e["end"]) for e in truth]
    spread = []  # how far each picture's chroma strays from grey
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            chroma = frame.to_ndarray()[176:].astype(np.int16) - 128
            spread.append((float(frame.time or 0), float(np.abs(chroma).mean())))
    assert all(s > 2.0 for t, s in spread if 0.1 < t < 0.9 or t > 2.1)  # (its 1st is black)
    assert all(s < 1.0 for t, s in spread if 1.1 < t < 1.9)  # black has none


def test_without_the_recordings_the_demo_runs_its_synthetic_channels(tmp_path):
    # No apt-get on the PATH and an empty media cache: a machine without the mirror.
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent),
        "AVWATCH_MEDIA_CACHE": str(tmp_path / "media"),
    }
    port = free_port()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "avwatch.cli",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--port",
            str(port),
            "--duration",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "real recordings unavailable (" in done.stdout
    assert "needs apt-get and dpkg" in done.stdout
    assert "4 live UDP channels" in done.stdout
