from helpers import assert_matches, of_type, run

from avwatch.lab.synth import Defect

FRAME = 1 / 25


def test_dropped_frames_with_their_count(make):
    path, truth = make(
        "drops",
        duration_s=8,
        defects=[Defect("dropped_frames", 2.0, 2.04), Defect("dropped_frames", 5.0, 5.4)],
    )
    found = of_type(run(path, ["dropped_frames"]), "dropped_frames")
    assert_matches(found, truth, "dropped_frames", FRAME / 2)
    assert [i.details["count"] for i in found] == [1, 10]


def test_clean_clip_has_no_drops(make):
    path, _ = make("clean_ntsc", duration_s=5, fps=__import__("fractions").Fraction(30000, 1001))
    assert of_type(run(path, ["dropped_frames"]), "dropped_frames") == []
