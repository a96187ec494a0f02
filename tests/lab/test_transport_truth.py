"""Transport truth measured on a TS by a parse of its own (avwatch.lab.damage), and
the analyser held to it."""

import pytest
from helpers import of_type, run

from avwatch.lab.damage import transport_truth
from avwatch.lab.synth import Defect


def test_pts_gaps_while_the_clock_runs_are_truth_and_the_analyser_reports_each(make):
    path, _ = make(
        "pts_gaps",
        suffix=".ts",
        duration_s=10,
        defects=[Defect("audio_loss", 2.0, 3.5), Defect("video_loss", 6.0, 8.0)],
    )
    truth = [e for e in transport_truth(path, 0.5) if e["type"] == "ts_pts_error"]
    # The sound is gone 1.5 s while the video's PCR runs: overdue 0.7 s after its last
    # PES, and again 0.7 s later. The video gone takes the PCR with it: the clock stands
    # still, a PCR error and no PTS error.
    assert [e["details"]["pid"] for e in truth] == [257, 257]
    assert [e["start"] for e in truth] == pytest.approx([2.66, 3.36], abs=0.05)
    # A 320x180 stream is thin: one chunk of packets spans more than the whole gap, and
    # a check at the end of each chunk alone found neither.
    found = of_type(run(path, ["black"]), "ts_pts_error")
    assert [i.start for i in found] == pytest.approx([e["start"] for e in truth], abs=0.05)
