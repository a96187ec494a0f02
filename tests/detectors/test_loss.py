from helpers import assert_matches, of_type, run

from avwatch.lab.synth import Defect

FRAME = 1 / 25


def test_audio_gap_is_audio_loss_not_silence(make):
    path, truth = make("audio_gap", duration_s=8, defects=[Defect("audio_loss", 3.0, 4.0)])
    result = run(path, ["audio_loss", "silence"])
    assert_matches(of_type(result, "audio_loss"), truth, "audio_loss", 0.001)
    assert of_type(result, "silence") == []


def test_video_gap_is_video_loss_not_dropped_frames(make):
    path, truth = make("video_gap", duration_s=10, defects=[Defect("video_loss", 3.0, 6.0)])
    result = run(path, ["video_loss", "dropped_frames"])
    assert_matches(of_type(result, "video_loss"), truth, "video_loss", FRAME / 2)
    assert of_type(result, "dropped_frames") == []


def test_audio_that_stops_for_good_is_lost_until_the_end(make):
    path, _ = make("audio_stops", duration_s=10, defects=[Defect("audio_loss", 6.0, 10.0)])
    (incident,) = of_type(run(path, ["audio_loss"]), "audio_loss")
    assert abs(incident.start - 6.0) <= 0.03
    assert abs(incident.end - 10.0) <= FRAME


def test_clean_clip_has_no_loss(make):
    path, _ = make("clean", duration_s=6)
    assert of_type(run(path, ["audio_loss", "video_loss"]), "audio_loss") == []
    result = run(path)
    assert result.incidents == []
