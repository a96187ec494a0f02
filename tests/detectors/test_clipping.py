from helpers import of_type, run

from avwatch.lab.synth import Defect


def test_clipping_after_aac_is_found(make):
    # A hard clipper driven 12 dB, then AAC: flat tops become ringing over 0 dBFS (trap 4).
    path, truth = make(
        "clipped", duration_s=8, video_codec=None, defects=[Defect("clipping", 3.0, 5.0)]
    )
    (expected,) = [t for t in truth if t["type"] == "clipping"]
    (incident,) = of_type(run(path, ["clipping"]), "clipping")
    assert abs(incident.start - expected["start"]) <= 0.02
    assert abs(incident.end - expected["end"]) <= 0.02


def test_loud_clean_music_is_not_clipping(make):
    path, _ = make("loud_music", duration_s=8, video_codec=None, sound="music", level_lufs=-10)
    result = run(path, ["clipping", "loudness"])
    assert result.summary["loudness"]["true_peak_dbtp"] > -3.0  # loud indeed
    assert of_type(result, "clipping") == []


def test_clipping_in_pcm_without_a_codec(make):
    path, truth = make(
        "clipped_pcm",
        suffix=".mkv",
        duration_s=6,
        video_codec=None,
        audio_codec="pcm_s16le",
        defects=[Defect("clipping", 2.0, 4.0)],
    )
    (expected,) = [t for t in truth if t["type"] == "clipping"]
    (incident,) = of_type(run(path, ["clipping"]), "clipping")
    assert abs(incident.start - expected["start"]) <= 0.02
    assert abs(incident.end - expected["end"]) <= 0.02
