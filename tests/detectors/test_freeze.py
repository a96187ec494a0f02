from fractions import Fraction

import pytest
from helpers import assert_matches, of_type, run

from avwatch.lab.synth import Defect

FRAME = 1 / 25


def test_freeze_of_noisy_content_is_found_to_the_frame(make):
    # Grain makes the encoder refine a repeated picture over frames (docs/media.md trap 3).
    path, truth = make(
        "freeze",
        duration_s=14,
        noise_levels=3,
        defects=[Defect("freeze", 3.0, 6.0), Defect("freeze", 9.0, 12.5)],
    )
    assert_matches(of_type(run(path, ["freeze"]), "freeze"), truth, "freeze", FRAME + 0.002)


def test_short_freeze_is_below_the_default_minimum(make):
    path, _ = make("freeze_short", duration_s=5, defects=[Defect("freeze", 2.0, 3.5)])
    assert of_type(run(path, ["freeze"]), "freeze") == []


@pytest.mark.parametrize("picture", ["static_ticker", "static_small_motion"])
def test_static_picture_with_small_motion_is_not_frozen(make, picture):
    path, _ = make(picture, duration_s=10, picture=picture, noise_levels=2)
    assert of_type(run(path, ["freeze"]), "freeze") == []


def test_a_freeze_as_long_as_the_minimum_is_reported_at_any_frame_rate(make):
    # 2.00 s at 29.97 fps from 2.37 s holds 59 pictures: 1.969 s of them.
    path, truth = make(
        "freeze_at_minimum",
        duration_s=7,
        fps=Fraction(30000, 1001),
        defects=[Defect("freeze", 2.37, 4.37)],
    )
    assert_matches(of_type(run(path, ["freeze"]), "freeze"), truth, "freeze", 1.001 / 30 + 0.002)


def test_a_freeze_one_picture_short_of_the_minimum_is_not(make):
    path, _ = make("freeze_49_pictures", duration_s=6, defects=[Defect("freeze", 2.0, 3.96)])
    assert of_type(run(path, ["freeze"]), "freeze") == []


def test_minimum_duration_is_configurable(make):
    path, truth = make("freeze_short", duration_s=5, defects=[Defect("freeze", 2.0, 3.5)])
    result = run(path, ["freeze"], detectors={"freeze": {"min_duration_s": 1.0}})
    assert_matches(of_type(result, "freeze"), truth, "freeze", FRAME + 0.002)


def test_freeze_in_hd_through_the_analysis_scaler(make):
    # 1280x720 shrinks 4x to the analysis picture: grain and the encoder's refinement
    # of the repeated picture must stay below the threshold after scaling.
    path, truth = make(
        "freeze_720p",
        width=1280,
        height=720,
        duration_s=9,
        noise_levels=4,
        defects=[Defect("freeze", 3.0, 6.0)],
    )
    assert_matches(of_type(run(path, ["freeze"]), "freeze"), truth, "freeze", FRAME + 0.002)
