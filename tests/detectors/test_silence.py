import numpy as np
from helpers import assert_matches, of_type, run

from avwatch.config import detector_config
from avwatch.detectors.silence import SilenceDetector, channel_partners
from avwatch.lab.synth import Defect
from avwatch.types import AudioBlock, AudioInfo, StreamInfo

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


def test_a_silence_as_long_as_the_minimum_is_reported(make):
    # Off the 10 ms windows and the AAC frames: the edges are found to the sample.
    path, truth = make(
        "silence_at_minimum",
        duration_s=7,
        video_codec=None,
        defects=[Defect("silence", 2.37, 4.37)],
    )
    assert_matches(of_type(run(path, ["silence"]), "silence"), truth, "silence", AUDIO_TOLERANCE_S)


def test_centre_only_dialogue_in_5_1_is_not_silence(make):
    # Fronts, surrounds and LFE quiet while the centre speaks: a normal 5.1 mix, even
    # at a file-QC minimum of 0.1 s.
    path, _ = make(
        "surround_centre_only",
        duration_s=6,
        video_codec=None,
        channels=6,
        sound="speech",
        defects=[Defect("silence", 0.0, 6.0, {"channel": c}) for c in (0, 1, 3, 4, 5)],
    )
    result = run(path, ["silence"], detectors={"silence": {"min_duration_s": 0.1}})
    assert of_type(result, "silence") == []


def test_a_dead_front_left_in_5_1_is_reported(make):
    path, _ = make(
        "surround_dead_left",
        duration_s=8,
        video_codec=None,
        channels=6,
        defects=[Defect("silence", 2.0, 6.0, {"channel": 0})],
    )
    (incident,) = of_type(run(path, ["silence"]), "silence")
    assert incident.details["channels"] == ["FL"]
    assert abs(incident.start - 2.0) <= AUDIO_TOLERANCE_S
    assert abs(incident.end - 6.0) <= AUDIO_TOLERANCE_S


def test_left_right_pairs_by_layout_name():
    assert channel_partners(("FL", "FR", "FC", "LFE", "BL", "BR")) == {0: 1, 1: 0, 4: 5, 5: 4}
    assert channel_partners(("FL", "FR", "FLC", "FRC", "SL", "SR")) == {
        0: 1, 1: 0, 2: 3, 3: 2, 4: 5, 5: 4
    }  # fmt: skip
    assert channel_partners(("FC",)) == {}


def _silences(blocks: list[np.ndarray], rate: int = 48000) -> list[tuple[str, float]]:
    info = StreamInfo("x", "wav", None, None, AudioInfo("pcm", rate, 1, "mono", ("FC",)))
    detector = SilenceDetector(detector_config(SilenceDetector, {"min_duration_s": 0.1}), info)
    t = 0.0
    for samples in blocks:
        detector.on_audio(AudioBlock(t, samples[None, :].astype(np.float32), rate))
        t += len(samples) / rate
    detector.flush(t)
    return [(e.phase, round(e.time, 4)) for e in detector.events]


def test_room_tone_under_the_rms_threshold_is_not_silence():
    # Between lines of dialogue: hiss at -66 dBFS RMS, its samples peaking near -54.
    tone = np.random.default_rng(1).normal(0, 10 ** (-66 / 20), 48000)
    assert 10 * np.log10(np.mean(tone**2)) < -60
    assert _silences([tone]) == []
    assert _silences([tone / 100]) == [("start", 0.0), ("end", 1.0)]  # -106 dBFS: silent


def test_digital_silence_is_found_to_the_sample_across_blocks():
    sound = np.full(48000, 0.1)
    sound[10_007:30_011] = 0.0  # 0.4167 s of silence, off every window and block edge
    blocks = [sound[k : k + 1024] for k in range(0, len(sound), 1024)]
    assert _silences(blocks) == [
        ("start", round(10_007 / 48000, 4)),
        ("end", round(30_011 / 48000, 4)),
    ]


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
