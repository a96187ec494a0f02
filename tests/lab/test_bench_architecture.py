"""bench architecture: both designs on one clip, on a Ray cluster started for it."""

from __future__ import annotations

import pytest

from avwatch.lab.bench.architecture import bench_architecture
from avwatch.lab.synth import ClipSpec, Defect, make_clip

pytest.importorskip("ray")
# One process runs every test that starts Ray: they share the machine's Ray.
pytestmark = pytest.mark.xdist_group("ray")


def test_both_designs_find_the_same_incidents_and_only_one_moves_bytes(tmp_path):
    clip = tmp_path / "arch.ts"
    make_clip(
        clip,
        ClipSpec(
            duration_s=5.0,
            width=320,
            height=180,
            defects=[Defect("black", 1.0, 2.5), Defect("silence", 1.5, 4.5)],
        ),
    )
    result = bench_architecture(clip, seconds=5.0, detectors=["black", "silence"], cpus=2)
    found = {kind for kind, _ in result.in_memory.incidents}
    assert found == {"black", "silence"}
    assert result.same_incidents
    assert result.in_memory.bytes_moved == 0
    # Every picture to the black detector and every audio block to silence's: at least
    # the analysis pictures' bytes (320x180 luma, 25 fps, 4 s or more).
    assert result.object_store.bytes_moved > 320 * 180 * 25 * 4
    assert result.object_store.media_s == result.in_memory.media_s > 4.9
    assert result.cost_ratio > 0
