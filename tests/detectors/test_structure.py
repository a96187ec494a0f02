"""The programme's tables held against expect:, and PMT changes logged, on a clip
whose PMT drops its second audio track half-way."""

from __future__ import annotations

from helpers import of_type

from avwatch.analysis.check import check
from avwatch.config import EngineConfig
from avwatch.lab.synth import Defect

PMT_EVERY_S = 0.11  # the muxer repeats the PMT every 100 ms: a change shows by the next


def _track_loss(make):
    return make(
        "track_loss", suffix=".ts", duration_s=8.0, defects=[Defect("track_loss", 4.0, 8.0)]
    )


def test_a_pmt_change_is_logged_and_the_programme_summarised(make):
    path, truth = _track_loss(make)
    result = check(str(path), EngineConfig())
    [change] = of_type(result, "pmt_changed")
    assert 0 <= change.start - truth[0]["start"] <= PMT_EVERY_S
    assert change.severity.value == "info"
    assert change.details == {"removed": ["audio 0x1200 (fra)"], "added": []}
    structure = result.summary["structure"]
    assert [(s["kind"], s["language"]) for s in structure["streams"]] == [
        ("video", None),
        ("audio", "eng"),
    ]
    assert structure["services"][0]["name"] == "Service01"  # FFmpeg's muxer's default
    assert not {i.type for i in result.incidents} & {"track_missing", "ts_pid_error"}


def test_what_expect_says_is_held_against_the_tables(make):
    path, _ = _track_loss(make)
    expect = {"audio_tracks": 2, "languages": ["fra", "ENG"], "service_name": "Service01"}
    result = check(str(path), EngineConfig(expect=expect))
    [missing] = of_type(result, "track_missing")
    [language] = of_type(result, "language_changed")
    for incident in (missing, language):
        assert 4.0 <= incident.start <= 4.0 + PMT_EVERY_S and incident.end is not None
    assert missing.details["audio_tracks"] == 1 and language.details["languages"] == ["eng"]
    assert not of_type(result, "service_changed")
    renamed = check(str(path), EngineConfig(expect={"service_name": "News 24"}))
    [service] = of_type(renamed, "service_changed")
    assert service.start < 0.2 and service.details["names"] == ["Service01"]
