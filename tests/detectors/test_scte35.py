"""SCTE-35 cues in a TS clip: each logged where it came, and the ad breaks they
announce checked against the clip's exact truth."""

from __future__ import annotations

from helpers import assert_matches, of_type

from avwatch.analysis.check import check
from avwatch.config import EngineConfig
from avwatch.lab.synth import Defect

TOLERANCE_S = 0.1  # a cue is dated by the PCR before it: 20 ms apart in these clips


def test_breaks_on_time_overrun_lost_and_late(make):
    path, truth = make(
        "ad_breaks",
        suffix=".ts",
        duration_s=36.0,
        defects=[
            Defect("ad_break", 6.0, 10.0),  # on time
            Defect("ad_break", 14.0, 18.0, {"overrun_s": 3.0}),  # the cue-in 3 s late
            Defect("ad_break", 24.0, 27.0, {"crc_error": 1}),  # the cue-out lost
            Defect("ad_break", 30.0, 33.0, {"late": 1}),  # sent after its splice time
        ],
    )
    result = check(str(path), EngineConfig())
    for type_ in (
        "scte35_cue",
        "ad_break_overrun",
        "scte35_crc_error",
        "scte35_unmatched_cue_in",
        "scte35_late_cue",
    ):
        assert_matches(of_type(result, type_), truth, type_, TOLERANCE_S)
    [overrun] = of_type(result, "ad_break_overrun")
    assert overrun.details["break_start"] == 14.0 and overrun.severity.value == "error"
    assert result.summary["scte35"] == {"cues": 7, "breaks": 3, "overruns": 1, "crc_errors": 1}
    assert not of_type(result, "ts_pid_error")  # a quiet cue PID is no PID error


def test_a_cue_in_within_the_tolerance_is_no_overrun(make):
    path, _ = make(
        "ad_break_slightly_late",
        suffix=".ts",
        duration_s=16.0,
        defects=[Defect("ad_break", 5.0, 9.0, {"overrun_s": 0.8})],
    )
    result = check(str(path), EngineConfig())
    assert len(of_type(result, "scte35_cue")) == 2
    assert not of_type(result, "ad_break_overrun")
