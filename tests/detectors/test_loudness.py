import pytest
from helpers import of_type, run

from avwatch.detectors.loudness.detector import LoudnessConfig
from avwatch.lab.synth import Defect


def test_programme_on_target_gives_no_event(make):
    path, _ = make("on_target", duration_s=40, video_codec=None, sound="music", level_lufs=-23)
    result = run(path, ["loudness"])
    assert of_type(result, "loudness") == []
    assert result.summary["loudness"]["integrated_lufs"] == pytest.approx(-23, abs=0.5)


def test_sustained_loudness_jump_is_dated_by_momentary_loudness(make):
    path, _ = make(
        "loud_jump",
        duration_s=40,
        video_codec=None,
        sound="music",
        defects=[Defect("loudness", 10.0, 25.0, {"gain_db": 12})],
    )
    found = [i for i in of_type(run(path, ["loudness"]), "loudness") if i.key == "short_term"]
    (incident,) = found
    assert incident.start == pytest.approx(10.0, abs=0.5)
    assert incident.end == pytest.approx(25.0, abs=0.5)
    assert incident.details["lufs"] > -23 + 6


def test_programme_mixed_low_fails_integrated_check(make):
    path, _ = make("mixed_low", duration_s=35, video_codec=None, sound="speech", level_lufs=-33)
    result = run(path, ["loudness"])
    measures = {i.key: i for i in of_type(result, "loudness")}
    assert measures["integrated"].details["lufs"] == pytest.approx(-33, abs=1.0)
    # Short-term is 10 LU low for the whole programme too.
    assert "short_term" in measures


def test_atsc_preset_sets_target_and_ceiling():
    config = LoudnessConfig(preset="atsc_a85")
    assert (config.target_lufs, config.max_true_peak_dbtp) == (-24.0, -2.0)
    assert LoudnessConfig(preset="atsc_a85", target_lufs=-20).target_lufs == -20


@pytest.mark.parametrize("rate", [96000, 192000])
def test_high_sample_rate_programme_is_metered(make, rate):
    # Contribution feeds carry 96 kHz audio; the true-peak filter once failed to build there.
    path, _ = make(
        f"on_target_{rate}",
        duration_s=12,
        video_codec=None,
        sound="music",
        level_lufs=-23,
        sample_rate=rate,
        audio_codec="pcm_s16le",
        suffix=".mkv",
    )
    result = run(path)
    assert result.info.audio is not None and result.info.audio.sample_rate == rate
    loudness = result.summary["loudness"]
    assert loudness["integrated_lufs"] == pytest.approx(-23, abs=0.5)
    assert -23 < loudness["true_peak_dbtp"] < 0
