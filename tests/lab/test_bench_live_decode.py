"""Decoding alone, played live (``bench streams``' floor): real worker processes
decoding a real clip at real-time pace, and the ways a trial fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import MakeClip

from avwatch.errors import ConfigError
from avwatch.lab.bench.live_decode import DecodeTrial, decode_live_trial
from avwatch.lab.bench.streams import StreamsResult, plan_cores


def trial(clip: Path, streams: int, fps: float, **overrides: Any) -> DecodeTrial:
    settings: dict[str, Any] = {
        "warmup_s": 0.5,
        "seconds": 2.0,
        "cpus": [],
        "workers": 2,
        "fps": fps,
        "batch_s": 0.2,
        "decoder_threads": 1,
        "max_lag_s": 1.0,
    }
    return decode_live_trial(clip, streams, **(settings | overrides))


def test_streams_played_live_keep_up_at_their_frame_rate(make: MakeClip) -> None:
    clip, _ = make("live_decode", suffix=".ts", duration_s=5.0)  # 25 fps
    result = trial(clip, 3, fps=25)
    assert result.kept_up, result
    assert result.streams == 3
    # Paced, not flat out (that is hundreds a second): 25 pictures a second, give or
    # take the batch (0.2 s) that falls at either end of the 2 s window.
    assert 21.0 <= result.min_fps <= 30.0
    assert 0.0 <= result.max_lag_s < 1.0


def test_streams_short_of_the_frame_rate_did_not_keep_up(make: MakeClip) -> None:
    clip, _ = make("live_decode", suffix=".ts", duration_s=5.0)  # 25 fps
    result = trial(clip, 1, fps=50)  # the trial asks for twice what the clip has
    assert not result.kept_up
    assert result.min_fps < 45


def test_a_clip_that_cannot_be_decoded_fails_the_trial(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.ts"
    garbage.write_bytes(b"\x00not a stream" * 1000)
    result = trial(garbage, 2, fps=25)
    assert not result.kept_up
    assert result.min_fps == 0.0


def test_the_ratio_is_live_to_live_with_the_cpu_estimate_beside_it() -> None:
    result = StreamsResult(
        "720p", "full", "veryfast", 2, 56.4, 37.6, live_streams=31, decode_only_live_streams=49
    )
    result.decode_trials.append(DecodeTrial(49, True, 0.82, 47.9))
    assert round(result.ratio, 3) == round(31 / 49, 3)
    assert round(result.ratio_by_cpu, 3) == round(31 / 56.4, 3)
    out = result.as_dict()
    assert out["live_to_decode_only_live_ratio"] == 0.633
    assert out["live_to_decode_only_by_cpu_ratio"] == 0.55
    assert out["decode_trials"] == [
        {"streams": 49, "kept_up": True, "max_lag_s": 0.82, "min_fps": 47.9}
    ]
    # No live decode-only count (nothing kept up): no ratio, rather than a division by 0.
    assert StreamsResult("720p", "full", "veryfast", 2, 56.4, 37.6, live_streams=3).ratio == 0.0


def test_plan_counts_cores_per_tier_and_the_full_slots_patrol_needs():
    per_core = {"full": 8.0, "patrol": 40.0}
    # All full: 500 / 8 per core.
    assert plan_cores(500, {"full": 1.0}, per_core, full_slots=2)["cores"] == 63
    # All patrol without slots: 500 / 40.
    assert plan_cores(500, {"patrol": 1.0}, per_core, full_slots=0)["cores_exact"] == 12.5
    # Two full slots a core cost 2 x (1/8 - 1/40) = 0.2 of it: 40 x 0.8 patrolled a core.
    plan = plan_cores(500, {"patrol": 0.9, "full": 0.1}, per_core, full_slots=2)
    assert plan["cores_exact"] == pytest.approx(450 / 32 + 50 / 8, abs=0.01)
    with pytest.raises(ConfigError, match="fast"):
        plan_cores(10, {"fast": 1.0}, per_core, full_slots=2)
