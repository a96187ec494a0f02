from helpers import assert_matches, of_type, run

from avwatch.lab.synth import Defect

AUDIO_TOLERANCE_S = 0.020


def test_silence_of_all_channels(make):
    path, truth = make(
        "silence",
        duration_s=12,
        video_codec=None,
        sound="speech",
        defects=[Defect("silence", 2.0, 4.5), Defect("silence", 7.3, 11.0)],
    )
    found = of_type(run(path, ["silence"]), "silence")
    assert_matches(found, truth, "silence", AUDIO_TOLERANCE_S)
    assert all(i.details["channels"] == "all" for i in found)


def test_one_dead_channel_of_a_stereo_pair(make):
    path, _ = make(
        "silence_right",
        duration_s=8,
        video_codec=None,
        defects=[Defect("silence", 2.0, 6.0, {"channel": 1})],
    )
    (incident,) = of_type(run(path, ["silence"]), "silence")
    assert incident.details["channels"] == ["FR"]
    assert abs(incident.start - 2.0) <= AUDIO_TOLERANCE_S
    assert abs(incident.end - 6.0) <= AUDIO_TOLERANCE_S


def test_quiet_speech_is_not_silence(make):
    # Mixed 20 dB low: a loudness problem, not silence (docs/media.md trap 7).
    path, _ = make("quiet_speech", duration_s=10, video_codec=None, sound="speech", level_lufs=-43)
    assert of_type(run(path, ["silence"]), "silence") == []


def test_silence_shorter_than_minimum_is_ignored(make):
    path, _ = make(
        "silence_short", duration_s=5, video_codec=None, defects=[Defect("silence", 2, 3.5)]
    )
    assert of_type(run(path, ["silence"]), "silence") == []


def test_lfe_is_not_a_dead_channel(make):
    # 5.1 with a silent LFE channel is normal programme.
    path, _ = make(
        "surround_silent_lfe",
        duration_s=5,
        video_codec=None,
        channels=6,
        defects=[Defect("silence", 0.0, 5.0, {"channel": 3})],
    )
    assert of_type(run(path, ["silence"]), "silence") == []
