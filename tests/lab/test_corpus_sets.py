"""The held-out set and the clean hour: what goes into them, and how eval reports them."""

import json
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avwatch.analysis.check import check
from avwatch.cli import main
from avwatch.config import EngineConfig
from avwatch.detectors.loudness.meter import LoudnessMeter
from avwatch.errors import AvwatchError
from avwatch.lab.corpus import media_cache, music_cases
from avwatch.lab.corpus_sets import clean_cases, heldout_cases
from avwatch.lab.peer_ffmpeg import PEER_TYPES
from avwatch.lab.realmedia import HELD_OUT, MUSIC, TUNING, fetch
from avwatch.lab.synth import ClipSpec, Defect, make_clip
from avwatch.lab.synth.qc_truth import (
    BlackFrames,
    clipping,
    loudness_runs,
    loudness_shift,
    silences,
    without_repeats,
)
from avwatch.transport.tr101290 import TR101290_TYPES

REAL = {f"real:{name}": f"/media/{name}" for name in (*TUNING, *HELD_OUT)}


def test_the_held_out_set_uses_no_recording_of_the_tuning_half():
    cases = heldout_cases(REAL)
    used = {
        path
        for _, spec, _, _ in cases
        for path in (spec.picture_file, spec.sound_file)
        if path is not None
    }
    assert used and used <= {f"/media/{name}" for name in HELD_OUT}
    codecs = {(spec.video_codec, spec.audio_codec) for _, spec, _, _ in cases}
    assert {("mpeg2video", "mp2"), ("libx265", "ac3"), ("libx264", "aac")} <= codecs
    names = [name for name, *_ in cases]
    assert len(names) == len(set(names))
    # Lip sync on the film's own dialogue, and the signal cut of just over a second.
    assert any("film_sync_p200" in n for n in names) and any("cut_1s1" in n for n in names)


def test_the_full_tuning_corpus_drives_real_music_into_clipping_in_aac_and_mp2():
    music = music_cases({f"real:{name}": f"/media/{name}" for name in MUSIC})
    assert {spec.sound_file for _, spec, _, _ in music} == {f"/media/{n}" for n in MUSIC}
    assert {(spec.audio_codec, spec.sample_rate) for _, spec, _, _ in music} == {
        ("aac", 44100),
        ("mp2", 48000),
    }
    assert {name.split("__")[1] for name, *_ in music} == {"clipping", "loudness"}
    assert music_cases({}) == []  # without the recordings, without these cases


def test_the_clean_set_is_over_an_hour_of_many_formats_without_a_defect():
    cases = clean_cases(REAL)
    assert sum(spec.duration_s for _, spec, _, _ in cases) >= 3600
    assert all(spec.defects == [] for _, spec, _, _ in cases)
    specs = [spec for _, spec, _, _ in cases]
    assert {s.video_codec for s in specs} >= {"libx264", "libx265", "mpeg2video"}
    assert {s.sample_rate for s in specs} >= {44100, 48000}
    assert any(s.centre_only and s.channels == 6 for s in specs)
    assert any(s.pulldown for s in specs) and any(s.interlaced for s in specs)
    assert {".ts", ".mp4", ".mkv"} <= {suffix for _, _, suffix, _ in cases}


def test_eval_scores_each_set_on_its_own_with_false_alarms_per_hour(make, tmp_path, capsys):
    path, _ = make("sets_black", duration_s=6, defects=[Defect("black", 2.0, 3.0)])
    for corpus_set, truth in (("tuning", [{"type": "black", "start": 2.0, "end": 3.0}]),
                              ("clean", [])):  # fmt: skip
        folder = tmp_path / corpus_set
        folder.mkdir()
        shutil.copy(path, folder / "clip.mp4")
        record = {"events": truth, "spec": {"duration_s": "6.0"}}
        (folder / "clip.truth.json").write_text(json.dumps(record))
    floors = tmp_path / "floors.json"
    floors.write_text(json.dumps({"false_alarms_per_hour": {"all": 1}}))
    assert main(["eval", str(tmp_path), "--json", "--detectors", "black"]) == 0
    sets = json.loads(capsys.readouterr().out)["sets"]
    assert set(sets) == {"tuning", "clean"}
    assert sets["tuning"]["types"]["black"]["f1"] == 1.0
    assert sets["tuning"]["false_alarms_per_hour"] == 0.0
    # A black second the clean set's truth does not hold: one false alarm in 6 s.
    assert sets["clean"]["types"]["black"]["fp"] == 1
    assert sets["clean"]["false_alarms_per_hour"] == 600.0
    assert sets["clean"]["media_hours"] == round(6 / 3600, 3)
    code = main(["eval", str(tmp_path), "--detectors", "black", "--floors", str(floors)])
    assert code == 1
    err = capsys.readouterr().err
    assert "all: 600.0 false alarms per hour, over 1" in err


def test_a_recording_with_a_broken_packet_still_gives_its_pictures_and_sound(tmp_path):
    # OpenCV's film excerpt: its AC-3 sound ends in a packet that does not decode.
    try:
        film = str(fetch(HELD_OUT["film"], media_cache()))
    except AvwatchError as exc:
        pytest.skip(f"the film excerpt is unavailable: {exc}")
    spec = ClipSpec(
        duration_s=12,  # past the recording's end: it loops
        width=360,
        height=264,
        fps=Fraction(24000, 1001),
        picture_file=film,
        sound="recorded",
        sound_file=film,
    )
    make_clip(tmp_path / "film.mp4", spec)
    result = check(str(tmp_path / "film.mp4"), EngineConfig(), ["silence", "freeze"])
    assert result.summary["decode"]["video_frames"] == 288
    assert result.incidents == []


def test_qc_only_truth_is_measured_on_what_was_encoded():
    blacks = BlackFrames(25.0)
    picture, black = np.full((36, 64), 120, np.uint8), np.full((36, 64), 16, np.uint8)
    shown = [picture, black, picture, black, black, black, picture, black, black]
    for i, luma in enumerate(shown):
        blacks.add(i, luma, made_black=i >= 7)  # the last two: a black defect's own
    blacks.close()
    found = [(e["start"], e["end"], e["details"]) for e in blacks.events]
    # One black frame (a dip, a film's first) is qc's; three are a defect at any profile.
    assert found == [(0.04, 0.08, {"profiles": ["qc"]}), (0.12, 0.24, {})]
    rate = 1000
    pcm = np.full((2, 5 * rate), 0.1, np.float32)
    pcm[:, 1000:1150] = 0.0  # 0.15 s: a qc silence
    pcm[:, 2000:2050] = 0.0  # 0.05 s: too short
    pcm[:, 3000:3200] = 0.0  # 0.2 s, and 0.3 s later 0.2 s more: one incident, as merged
    pcm[:, 3500:3700] = 0.0
    pcm[1, 4000:4500] = 0.0  # one channel only
    found = [(e["start"], e["end"]) for e in silences(pcm, rate, [], [])]
    assert found == [(1.0, 1.15), (3.0, 3.7)]
    known = [{"type": "silence", "start": 0.9, "end": 1.2, "details": {}}]
    assert [(e["start"], e["end"]) for e in silences(pcm, rate, known, [(3.1, 3.2)])] == []


def test_clipping_truth_is_where_samples_sit_on_full_scale_in_bursts_as_detected():
    rate = 48000
    pcm = np.full((2, 6 * rate), 0.5, np.float32)
    pcm[0, 48000:48004] = 1.0  # 4 samples in one 10 ms window: clipped
    pcm[1, 48480:48484] = -1.0  # the next window, on the other channel
    pcm[0, 96000:96003] = 1.0  # 3 samples: a peak touched, under the rule
    pcm[:, 144000:168000:250] = 1.0  # 1 or 2 per window, under the rule, though for 0.5 s
    pcm[0, 192000:192004] = 1.0  # two bursts 0.4 s apart: one run, as the detector's
    pcm[0, 211200:211204] = 1.0
    pcm[0, 264000:264004] = 1.0  # inside lost audio: not clipping
    pcm[0, 211680:211682] = 1.0  # 2 samples 10 ms after a run: part of its end hold
    events = clipping(pcm, rate, [(5.4, 5.6)])
    found = [(round(e["start"], 3), round(e["end"], 3)) for e in events]
    assert found == [(1.0, 1.02), (4.0, 4.41), (2.0, 2.01)]
    # Touched full scale, under the rule, away from a run: neither required nor a false
    # alarm where found (the sparse touches at 3.0-3.5 s end within the hold of the next run).
    assert [e["details"] for e in events] == [{}, {}, {"either_way": True}]


def test_a_loudness_shift_is_truth_at_the_profiles_whose_rule_it_meets():
    rate, names = 8000, ("FL", "FR")
    t = np.arange(40 * rate) / rate
    tone = np.vstack([np.sin(2 * np.pi * 997 * t)] * 2).astype(np.float32)
    meter = LoudnessMeter(rate, names)
    meter.feed(tone, 0.0)
    on_target = tone * np.float32(10 ** ((-23 - meter.integrated_lufs()) / 20))
    gain = np.float32(10 ** (12 / 20))
    long_step, short_step = on_target.copy(), on_target.copy()
    long_step[:, 10 * rate : 25 * rate] *= gain  # 15 s: over live's 10 s
    short_step[:, 10 * rate : 15 * rate] *= gain  # 5 s: over qc's 3 s only

    def runs(pcm):
        return {p: loudness_runs(pcm, rate, names, p) for p in ("live", "qc")}

    shift = {"type": "loudness", "start": 10.0, "end": 25.0, "details": {}}
    assert loudness_shift(shift, runs(on_target)) is None
    assert loudness_shift(shift, runs(long_step))["details"] == {}
    short = loudness_shift({**shift, "end": 15.0}, runs(short_step))
    assert short["details"] == {"profiles": ["qc"]}


def test_eval_counts_qc_only_truth_at_qc_alone(make, tmp_path, capsys):
    path, truth = make("qc_dip", duration_s=6, fades=[3.0])
    shutil.copy(path, tmp_path / "clip.mp4")
    record = {"events": truth, "spec": {"duration_s": "6.0"}}
    (tmp_path / "clip.truth.json").write_text(json.dumps(record))
    assert main(["eval", str(tmp_path), "--json", "--detectors", "black"]) == 0
    assert "black" not in json.loads(capsys.readouterr().out)["types"]  # live: no black
    assert main(["eval", str(tmp_path), "--json", "--detectors", "black", "--profile", "qc"]) == 0
    black = json.loads(capsys.readouterr().out)["types"]["black"]
    assert (black["tp"], black["fp"], black["fn"]) == (1, 0, 0)


def test_eval_names_the_types_with_nothing_found_or_to_find(make, tmp_path, capsys):
    # The dip is black at qc only: at live, black is watched with nothing to find.
    path, truth = make("qc_dip", duration_s=6, fades=[3.0])
    shutil.copy(path, tmp_path / "clip.mp4")
    record = {"events": truth, "spec": {"duration_s": "6.0"}}
    (tmp_path / "clip.truth.json").write_text(json.dumps(record))
    args = ["eval", str(tmp_path), "--detectors", "black"]
    assert main([*args, "--json", "--peer", "ffmpeg"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["types"] == {} and report["nothing_found"] == ["black"]
    peer = report["peer"]["ffmpeg"]
    assert set(peer["types"]) | set(peer["nothing_found"]) == PEER_TYPES
    assert main(args) == 0
    assert "nothing found or to find, so no false alarm: black\n" in capsys.readouterr().out
    floors = tmp_path / "floors.json"
    floors.write_text(json.dumps({"f1": {"black": 0.95}}))  # measured nowhere: not met
    assert main([*args, "--json", "--floors", str(floors)]) == 1
    said = "avwatch: black: nothing to find or found, no F1 below the floor 0.95\n"
    assert capsys.readouterr().err == said
    assert main([*args, "--json", "--profile", "qc"]) == 0
    assert "nothing_found" not in json.loads(capsys.readouterr().out)  # black has its row
    # A transport stream is watched by TR 101 290's checks too.
    ts, _ = make("quiet_ts", suffix=".ts", duration_s=3)
    (tmp_path / "clip.mp4").unlink()
    (tmp_path / "clip.truth.json").unlink()
    shutil.copy(ts, tmp_path / "stream.ts")
    (tmp_path / "stream.truth.json").write_text(json.dumps({"events": []}))
    assert main([*args, "--json"]) == 0
    quiet = json.loads(capsys.readouterr().out)["nothing_found"]
    assert quiet == sorted({"black", *TR101290_TYPES})


def test_qc_only_truth_repeating_truth_of_every_profile_is_left_out():
    everywhere = {"type": "loudness", "start": 0.0, "end": 10.0, "details": {}}
    repeat = {"type": "loudness", "start": 0.4, "end": 10.0, "details": {"profiles": ["qc"]}}
    other = {"type": "silence", "start": 2.0, "end": 2.2, "details": {"profiles": ["qc"]}}
    assert without_repeats([everywhere, repeat, other]) == [everywhere, other]


def test_every_case_name_says_its_format_and_scenario():
    # corpus.build reads what a file is checked against from the part after "__".
    for name, *_ in heldout_cases(REAL) + clean_cases(REAL):
        fmt, sep, scenario = name.partition("__")
        assert sep and fmt and scenario, name


def test_a_stopped_build_resumes_with_the_cases_already_written(tmp_path, monkeypatch):
    from avwatch.lab import corpus

    spec = ClipSpec(duration_s=1.0, width=64, height=48)
    names = ["tuning__first", "tuning__second"]
    monkeypatch.setattr(
        corpus, "cases", lambda quick, real=True: [(n, spec, ".mp4", []) for n in names]
    )
    made: list[str] = []
    real_make_clip = corpus.make_clip

    def counted_make_clip(path: Path, clip: ClipSpec) -> Any:
        made.append(path.stem)
        return real_make_clip(path, clip)

    monkeypatch.setattr(corpus, "make_clip", counted_make_clip)
    corpus.build(tmp_path)
    assert made == names
    (tmp_path / "tuning__second.truth.json").unlink()  # stopped while writing the second
    made.clear()
    written = corpus.build(tmp_path, resume=True)
    assert made == ["tuning__second"]
    assert [p.name for p in written] == ["tuning__first.mp4", "tuning__second.mp4"]
    record = json.loads((tmp_path / "tuning__first.truth.json").read_text())
    record["spec"]["duration_s"] = "2.0"  # written from another spec: made again
    (tmp_path / "tuning__first.truth.json").write_text(json.dumps(record))
    made.clear()
    corpus.build(tmp_path, resume=True)
    assert made == ["tuning__first"]
