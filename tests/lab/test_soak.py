"""``avwatch bench soak`` in a short run: its schedule happens (a cut, a worker
kill) and its accounting finds the defects, the cut and the restart."""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
import threading

from avwatch.lab.bench.soak import (
    Sample,
    SoakPlan,
    SoakResult,
    _cut_reported,
    _killed_during,
    _slopes,
    soak,
)


def test_a_short_soak_accounts_for_its_defects_cuts_and_kills(tmp_path):
    plan = SoakPlan(
        hours=0.02,  # 72 s: each stream has defects no cut or kill overlaps
        streams=2,
        workers=2,  # one stream each
        cut_every_s=25.0,  # one cut on each stream
        cut_s=6.0,
        kill_every_s=40.0,  # the first stream's worker
        sample_every_s=5.0,
    )
    lines: list[str] = []
    result = soak(plan, tmp_path / "clips", progress=lines.append)

    assert result.cuts == 2 and result.cuts_reported == 2
    assert result.kills == 1 and result.worker_restarts == 1
    assert result.recovery_s and all(math.isfinite(r) for r in result.recovery_s)
    assert sum(result.expected.values()) >= 1  # the second stream's, at least
    assert result.found == result.expected
    assert result.alerts_written > 0 and result.alerts_delivered == result.alerts_written
    assert len(result.samples) >= 8 and all(s.workers for s in result.samples)
    busy, busiest = result.busy_mean_max
    assert 0 < busy <= busiest <= 1  # two streams at least keep their workers going
    assert any(line.startswith("killed worker") for line in lines)
    assert result.memory_growth == []  # not traced unless asked


def test_a_traced_soak_says_where_the_service_grew(tmp_path):
    # Apart from the accounting test: tracing every allocation slows the bench process,
    # which sends the streams too.
    plan = SoakPlan(
        hours=0.006,  # 22 s, the warm-up snapshot a quarter in
        streams=1,
        workers=1,
        cut_every_s=3600.0,
        kill_every_s=3600.0,
        sample_every_s=2.0,
        trace_memory=True,
    )
    result = soak(plan, tmp_path / "clips")
    # Source lines ("file:line"), a frozen module's included ("<frozen ...>:123").
    assert result.memory_growth
    assert all(re.fullmatch(r".+:\d+", where) for where, _, _ in result.memory_growth)


def test_a_restarted_worker_is_fitted_after_its_own_warm_up():
    # One hour; the second worker is killed at 30 min and its successor fills up over
    # ten minutes, then stays flat, like the first.
    samples = []
    for minute in range(0, 61):
        workers = {1: (500.0, 10)}
        if minute < 30:
            workers[2] = (500.0, 10)
        else:
            workers[3] = (100.0 + 40 * min(minute - 30, 10), 10)
        samples.append(Sample(minute * 60.0, 300.0, 20, workers))
    result = SoakResult(hours=1.0, streams=40, workers=2, capacity_streams=None, samples=samples)
    _slopes(result, 40)
    assert result.worker_rss_slope_mb_h == 0.0  # not the successor's 2400 MB/h warm-up
    assert result.rss_slope_mb_per_stream_hour == 0.0


def test_a_cut_is_reported_by_an_input_loss_from_the_last_packet_before_it():
    # The receiver's last datum can come a burst before the sender paused (CI saw this).
    assert _cut_reported(100.0, [("black", 100.0), ("input_loss", 99.98)])
    assert _cut_reported(100.0, [("input_loss", 101.2)])
    assert not _cut_reported(100.0, [("input_loss", 130.0), ("silence", 100.0)])


def test_a_soak_stopped_by_sigterm_reports_what_it_measured(tmp_path):
    report = tmp_path / "soak.json"
    command = [sys.executable, "-m", "avwatch.cli", "bench", "soak", "--hours", "1"]
    command += ["--streams", "1", "--workers", "1", "--sample-every", "2"]
    command += ["--cache", str(tmp_path / "clips"), "--json", str(report)]
    soaking = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(300, soaking.kill)  # a soak that stops printing ends too
    watchdog.start()
    try:
        assert soaking.stdout is not None
        sampled = 0
        for line in soaking.stdout:  # the clips are made first, then a sample each 2 s
            sampled += " min  service " in line
            if sampled == 3:
                break
        soaking.send_signal(signal.SIGTERM)
        out, _ = soaking.communicate(timeout=120)
    finally:
        watchdog.cancel()
        soaking.kill()
    assert soaking.returncode == 0
    assert "stopped early" in out
    result = json.loads(report.read_text(encoding="utf-8"))
    assert result["stopped_early"] and 0 < result["hours"] < 0.05
    assert len(result["samples"]) >= 3


def test_a_cut_whose_worker_was_killed_during_it_is_left_out():
    kills = [(["a", "b"], 900.0)]
    assert _killed_during("a", 900.0, 908.0, kills)  # the same instant (a 1 h soak's 15 min)
    assert _killed_during("b", 910.0, 918.0, kills)  # just after: its successor is starting
    assert not _killed_during("c", 900.0, 908.0, kills)  # another worker's stream
    assert not _killed_during("a", 1200.0, 1208.0, kills)  # long after
