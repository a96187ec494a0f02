"""The `avwatch` command as a user runs it: exit codes, reports, one-line errors."""

import json
import subprocess
import sys

import pytest
from helpers import free_port

from avwatch.cli import main
from avwatch.detectors.base import available_detectors
from avwatch.lab.synth import Defect


def avwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "avwatch.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_check_json_report_follows_the_contract(make, tmp_path, capsys):
    path, _ = make("cli_clip", duration_s=6, defects=[Defect("black", 2.0, 3.0)])
    out = tmp_path / "report.json"
    assert main(["check", str(path), "--json", "-o", str(out)]) == 1
    printed = json.loads(capsys.readouterr().out)
    written = json.loads(out.read_text())
    assert printed == written
    assert set(printed) == {"source", "avwatch_version", "media", "events", "metrics"}
    assert printed["media"]["video"]["width"] == 320
    assert printed["media"]["audio"]["channels"] == 2
    assert printed["media"]["duration_s"] == pytest.approx(6.0, abs=0.05)
    (event,) = printed["events"]
    assert event["type"] == "black" and event["detector"] == "black"
    assert event["start"] == pytest.approx(2.0, abs=0.04) and event["severity"] == "error"


def test_clean_clip_exits_zero(make, capsys):
    path, _ = make("cli_clean", duration_s=4)
    assert main(["check", str(path)]) == 0
    assert "no defects found" in capsys.readouterr().out


def test_check_at_the_patrol_tier_says_what_it_judged(make, capsys):
    path, _ = make("cli_clean", duration_s=4)
    assert main(["check", str(path), "--analysis", "patrol"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps at the terminal's width
    assert "analysis: patrol — 2 keyframes decoded alone" in out
    assert "lip sync: not judged for" in out
    assert main(["check", str(path), "--analysis", "fast", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["metrics"]["analysis"]["tier"] == "fast"
    assert report["media"]["video"]["frames"] == 100


def test_the_qc_profile_reports_short_defects_that_live_lets_pass(make, capsys):
    path, _ = make(
        "cli_short_defects",
        duration_s=6,
        sound="tone",
        defects=[
            Defect("black", 1.0, 1.04),  # one picture
            Defect("freeze", 2.0, 2.5),
            Defect("silence", 4.0, 4.3),
        ],
    )
    assert main(["check", str(path), "--json"]) == 0
    live = json.loads(capsys.readouterr().out)
    assert live["events"] == [] and live["metrics"]["profile"] == "live"
    assert main(["check", str(path), "--json", "--profile", "qc"]) == 1
    qc = json.loads(capsys.readouterr().out)
    assert qc["metrics"]["profile"] == "qc"
    found = {e["type"]: (e["start"], e["end"]) for e in qc["events"]}
    assert found.keys() == {"black", "freeze", "silence"}
    assert found["black"] == pytest.approx((1.0, 1.04), abs=0.005)
    assert found["freeze"] == pytest.approx((2.0, 2.5), abs=0.045)
    assert found["silence"] == pytest.approx((4.0, 4.3), abs=0.02)
    assert main(["detectors"]) == 0
    assert "profile qc: min_duration_s = 0.3" in capsys.readouterr().out


def test_fail_on_threshold(make):
    path, _ = make("cli_drop", duration_s=4, defects=[Defect("dropped_frames", 2.0, 2.08)])
    assert main(["check", str(path), "--fail-on", "warning"]) == 1
    assert main(["check", str(path), "--fail-on", "error"]) == 0


def test_duration_limits_the_window(make, capsys):
    path, _ = make("cli_black_late", duration_s=6, defects=[Defect("black", 4.0, 5.0)])
    assert main(["check", str(path), "--duration", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["media"]["duration_s"] == pytest.approx(3.0)


def test_detector_selection_and_config_file(make, tmp_path, capsys):
    path, _ = make("cli_freeze", duration_s=5, defects=[Defect("freeze", 1.0, 2.5)])
    config = tmp_path / "avwatch.yaml"
    config.write_text("detectors:\n  freeze:\n    min_duration_s: 1.0\n")
    assert (
        main(["check", str(path), "--detectors", "freeze", "--config", str(config), "--json"]) == 1
    )
    report = json.loads(capsys.readouterr().out)
    assert [e["type"] for e in report["events"]] == ["freeze"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "/no/such/file.ts"], "no such file"),
        (["check", "--detectors", "blak", "{clip}"], "unknown detector 'blak'"),
        (["check", "--config", "{bad_config}", "{clip}"], "min_duration_s"),
        (["check", "--config", "{typo_config}", "{clip}"], "Extra inputs are not permitted"),
        (["check", "{garbage}"], "not a media file"),
        (["check", "{truncated}"], "not a media file"),
        (["check", "--detectors", ",", "{clip}"], "name at least one"),
        (["check", "{clip}", "-o", "{tmp}/no/such/dir/report.json"], "no directory"),
        (["check", "{clip}", "-o", "{tmp}"], "is a directory"),
    ],
    ids=[
        "missing",
        "unknown-detector",
        "out-of-bounds",
        "typo-in-config",
        "garbage",
        "truncated-mp4",
        "no-detectors",
        "report-into-no-directory",
        "report-onto-a-directory",
    ],
)
def test_unusable_input_is_one_line_and_exit_2(make, tmp_path, args, message):
    clip, _ = make("cli_clean", duration_s=4)
    files = {
        "clip": str(clip),
        "bad_config": tmp_path / "bad.yaml",
        "typo_config": tmp_path / "typo.yaml",
        "garbage": tmp_path / "garbage.mp4",
        "truncated": tmp_path / "truncated.mp4",
        "tmp": tmp_path,
    }
    files["bad_config"].write_text("detectors:\n  black:\n    min_duration_s: -1\n")
    files["typo_config"].write_text("detectors:\n  black:\n    min_duraton_s: 1\n")
    files["garbage"].write_bytes(b"\x00garbage" * 5000)
    files["truncated"].write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    result = avwatch(*(a.format(**files) for a in args))
    assert result.returncode == 2, result
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_serve_on_a_ray_head_nobody_runs_is_one_line_and_exit_2(make, tmp_path):
    # ray.init alone retries such an address for about twelve minutes.
    pytest.importorskip("ray")
    clip, _ = make("cli_clean", duration_s=4)
    config = tmp_path / "serve.yaml"
    config.write_text(f"streams:\n  - {{id: lab, url: {clip}, loop: true}}\n")
    address = f"127.0.0.1:{free_port()}"
    database = f"sqlite:///{tmp_path / 'serve.db'}"
    result = avwatch("serve", "--config", str(config), "--ray", address, "--db", database)
    assert result.returncode == 2, result
    assert result.stderr.strip() == (
        f"avwatch: error: the Ray cluster at {address} does not answer: Connection refused"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--duration", "0", "{clip}"], "'0': must be more than 0 seconds"),
        (["check", "--duration", "-5", "{clip}"], "'-5': must be more than 0 seconds"),
        (["check", "--duration", "soon", "{clip}"], "'soon' is not a number of seconds"),
        (["corpus", "build", "{clip}"], "not a directory"),
    ],
    ids=["zero-duration", "negative-duration", "duration-not-a-number", "corpus-into-a-file"],
)
def test_refused_arguments_exit_2(make, args, message):
    # A check of no media must not pass a delivery gate as "no defects found".
    clip, _ = make("cli_clean", duration_s=4)
    result = avwatch(*(a.format(clip=clip) for a in args))
    assert result.returncode == 2, result
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_truncated_transport_stream_is_checked_up_to_the_cut(make, tmp_path, capsys):
    clip, _ = make("cli_ts", suffix=".ts", duration_s=6)
    cut = tmp_path / "cut.ts"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2 + 77])  # mid-packet
    main(["check", str(cut), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert 2.0 < report["media"]["duration_s"] < 4.5


@pytest.mark.parametrize(
    ("fields", "skipped"),
    [({"video_codec": None}, "black"), ({"audio_codec": None}, "silence")],
    ids=["audio-only", "video-only"],
)
def test_file_without_audio_or_video(make, fields, skipped, capsys):
    path, _ = make(
        "only_" + ("audio" if fields.get("video_codec", 1) is None else "video"),
        duration_s=4,
        **fields,
    )
    assert main(["check", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert skipped in report["metrics"]["skipped_detectors"]


def test_detectors_lists_options_with_bounds(capsys):
    assert main(["detectors"]) == 0
    out = capsys.readouterr().out
    for key, cls in available_detectors().items():
        assert f"{key} ({', '.join(sorted(cls.needs))})" in out
    assert "threshold_dbfs = -60.0" in out and ">=-120.0" in out


def test_synth_writes_truth(tmp_path):
    out, truth = tmp_path / "demo.ts", tmp_path / "truth.json"
    result = avwatch(
        "synth",
        str(out),
        "--duration",
        "3",
        "--size",
        "160x90",
        "--defect",
        "black:1-2",
        "--truth",
        str(truth),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(truth.read_text())["events"][0] == {
        "type": "black",
        "start": 1.0,
        "end": 2.0,
        "details": {},
    }
    bad = avwatch("synth", str(out), "--defect", "blue:1-2")
    assert bad.returncode == 2 and "type must be one of" in bad.stderr
    lonely = avwatch("synth", str(out), "--sound", "recorded")
    assert lonely.returncode == 2 and "--sound-file" in lonely.stderr


@pytest.mark.parametrize(
    ("option", "says"),
    [
        (["--duration", "0"], "duration must be over 0"),
        (["--duration", "1e9"], "at most 600 s"),
        (["--size", "100x75"], "must be even"),
        (["--size", "640"], "expected WxH"),
        (["--fps", "1/0"], "expected a number such as 25"),
        (["--fps", "0"], "from 1 to 240"),
        (["--noise", "-1"], "0 or more"),
        (["--video-codec", "nope"], "no video encoder named 'nope'"),
        (["--audio-codec", "libx264"], "encodes video, not audio"),
        (["--defect", "black:5-20"], "starts after the clip ends (3 s)"),
        (["--sound", "recorded", "--sound-file", "/no/such.wav"], "No such file"),
    ],
)
def test_synth_refuses_what_it_cannot_make(tmp_path, capsys, option, says):
    out = tmp_path / "bad.mp4"
    assert main(["synth", str(out), "--duration", "3", *option]) == 2
    err = capsys.readouterr().err
    assert err.startswith("avwatch: error: ") and says in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_synth_choices_are_the_generators_own():
    from typing import get_args

    from avwatch.cli.synth import SYNTH_PICTURES, SYNTH_SOUNDS
    from avwatch.lab.synth import Picture, Sound

    assert get_args(Picture) == SYNTH_PICTURES and get_args(Sound) == SYNTH_SOUNDS


def test_bench_throughput_reports_ratio(make, capsys):
    path, _ = make("cli_bench", duration_s=3)
    assert main(["bench", "throughput", str(path), "--repeat", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["frames"] == 75
    assert 0 < result["pipeline_to_decode_ratio"] <= 1.5
    # Paired: one ratio a round, and their median (of two: the mean).
    rounds = result["round_ratios"]
    assert len(rounds) == 2 and all(0 < r <= 1.5 for r in rounds)
    assert result["pipeline_to_decode_paired_ratio"] == pytest.approx(sum(rounds) / 2, abs=0.002)
    assert set(result["detector_share_of_pipeline_cpu"]) >= {"black", "freeze", "loudness"}
    # The best pipeline run split by thread adds up to its frames per CPU-second.
    split = result["cpu_us_per_picture"]
    assert set(split) == {"decode_only", "full_pipeline"}
    pipeline = split["full_pipeline"]
    assert pipeline["main_thread"] > 0 and pipeline["other_threads"] >= 0
    total = pipeline["main_thread"] + pipeline["other_threads"]
    assert total == pytest.approx(1e6 / result["full_pipeline_fps_per_cpu_s"], rel=0.01)


@pytest.mark.parametrize("seconds", ["0", "21"])
def test_bench_streams_refuses_a_trial_the_clip_would_not_outlast(tmp_path, capsys, seconds):
    cache = tmp_path / "bench"
    assert main(["bench", "streams", "--seconds", seconds, "--cache", str(cache)]) == 2
    assert "at most 20 s" in capsys.readouterr().err
    assert not cache.exists()  # refused before any clip is made


def test_transport_errors_in_the_report_and_the_tr101290_table(make, tmp_path, capsys):
    import numpy as np

    clip, _ = make("cli_ts_clean", suffix=".ts", duration_s=4)
    p = np.frombuffer(clip.read_bytes(), np.uint8).reshape(-1, 188).copy()
    pid = ((p[:, 1].astype(int) & 0x1F) << 8) | p[:, 2]
    video = np.flatnonzero(pid == 0x100)
    damaged = tmp_path / "dropped.ts"
    damaged.write_bytes(np.delete(p, video[[50, 150]], axis=0).tobytes())
    assert main(["check", str(damaged), "--json", "--ts-report", "--detectors", "black"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    cc = [e for e in report["events"] if e["type"] == "ts_cc_error"]
    assert sum(e["details"]["count"] for e in cc) == 2
    assert all(e["details"]["pid"] == 0x100 and e["severity"] == "error" for e in cc)
    assert report["metrics"]["ts"]["errors"]["ts_cc_error"] == 2  # (a lost PCR may add a PCR error)
    assert "Continuity_count_error" in captured.err  # the table goes to stderr with --json
