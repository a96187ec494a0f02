"""Caption data in the pictures: present, stopped and back, never there when
expected; each against the clip's exact truth."""

from __future__ import annotations

import pytest
from helpers import assert_matches, of_type

from avwatch.analysis.check import check
from avwatch.config import EngineConfig
from avwatch.errors import ConfigError
from avwatch.lab.synth import ClipSpec, Defect, make_clip

FRAME_S = 0.04


def test_captions_that_stop_for_longer_than_the_minimum_are_missing(make):
    path, truth = make(
        "captions_stop",
        suffix=".ts",
        duration_s=20.0,
        captions=True,
        defects=[Defect("captions_loss", 3.0, 9.0), Defect("captions_loss", 13.0, 15.0)],
    )
    config = EngineConfig(detectors={"captions": {"min_duration_s": 4.0}})
    result = check(str(path), config)
    long_gap = [t for t in truth if t["start"] == 3.0]  # the 2 s gap is under the minimum
    assert_matches(of_type(result, "captions_missing"), long_gap, "captions_missing", FRAME_S)
    summary = result.summary["captions"]
    assert summary["present"] and summary["channels"] == ["608 field 1"]
    assert summary["share"] == pytest.approx(12 / 20, abs=0.01)


def test_a_stream_expected_to_carry_captions_that_has_none(make):
    path, _ = make("no_captions", suffix=".ts", duration_s=6.0)
    assert not of_type(check(str(path), EngineConfig()), "captions_missing")
    result = check(str(path), EngineConfig(expect={"captions": True}))
    [missing] = of_type(result, "captions_missing")
    assert missing.start == 0.0 and missing.end == pytest.approx(6.0, abs=FRAME_S)
    assert missing.details["never_seen"] is True
    assert result.summary["captions"]["present"] is False


def test_captions_need_h264_in_ts(tmp_path):
    with pytest.raises(ConfigError, match=r"libx264 in a \.ts"):
        make_clip(tmp_path / "c.mp4", ClipSpec(duration_s=1.0, captions=True))
