from fractions import Fraction

from helpers import assert_matches, of_type, run

from avwatch.lab.synth import Defect

FRAME = 1 / 25


def test_black_intervals_found_to_the_frame(make):
    path, truth = make(
        "black",
        duration_s=10,
        defects=[Defect("black", 2.0, 2.12), Defect("black", 4.0, 5.0), Defect("black", 7.0, 9.0)],
    )
    result = run(path, ["black"])
    assert_matches(of_type(result, "black"), truth, "black", FRAME + 0.002)


def test_black_until_end_of_stream_is_closed_at_the_end(make):
    path, _ = make("black_tail", duration_s=5, defects=[Defect("black", 3.0, 5.0)])
    (incident,) = of_type(run(path, ["black"]), "black")
    assert abs(incident.start - 3.0) <= FRAME and abs(incident.end - 5.0) <= FRAME


def test_dark_scene_is_not_black(make):
    path, _ = make("dark", duration_s=6, picture="dark", noise_levels=2)
    assert of_type(run(path, ["black"]), "black") == []


def test_one_black_frame_is_below_the_default_minimum(make):
    # A cut through black is editing, not a defect; 3 frames at 50 fps (0.06 s) is.
    path, _ = make("black_1f", duration_s=4, defects=[Defect("black", 2.0, 2.04)])
    assert of_type(run(path, ["black"]), "black") == []


def test_two_black_frames_are_below_the_default_minimum(make):
    path, _ = make("black_2f", duration_s=4, defects=[Defect("black", 2.0, 2.08)])
    assert of_type(run(path, ["black"]), "black") == []


def test_black_as_long_as_the_minimum_is_reported_at_any_frame_rate(make):
    # 2.00 s at 29.97 fps from 2.37 s holds 59 pictures: 1.969 s of them.
    path, truth = make(
        "black_at_minimum",
        duration_s=6,
        fps=Fraction(30000, 1001),
        defects=[Defect("black", 2.37, 4.37)],
    )
    result = run(path, ["black"], detectors={"black": {"min_duration_s": 2.0}})
    assert_matches(of_type(result, "black"), truth, "black", 1.001 / 30 + 0.002)


def test_black_and_dark_scene_in_hd_through_the_analysis_scaler(make):
    path, truth = make(
        "black_720p",
        width=1280,
        height=720,
        duration_s=6,
        noise_levels=3,
        defects=[Defect("black", 2.0, 3.0)],
    )
    assert_matches(of_type(run(path, ["black"]), "black"), truth, "black", FRAME + 0.002)
    path, _ = make(
        "dark_720p", width=1280, height=720, duration_s=4, picture="dark", noise_levels=2
    )
    assert of_type(run(path, ["black"]), "black") == []
