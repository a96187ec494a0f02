"""The service YAML: streams, the one merge of global and per-stream settings, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from avwatch.config import load_model
from avwatch.errors import ConfigError
from avwatch.service.config import ServiceConfig, stream_engine_config

YAML = """
database: sqlite:///x.db
api_token: s3cret
engine:
  merge_gap_s: 1.0
  detectors:
    black: {min_duration_s: 0.5, picture_black_ratio: 0.99}
    loudness: {preset: ebu_r128}
streams:
  - id: news
    url: udp://239.1.1.1:5000
    detectors:
      black: {min_duration_s: 2.0}
      loudness: {preset: atsc_a85}
webhooks:
  - url: http://127.0.0.1:9000/hook
    secret: abc
"""


def test_stream_overrides_merge_onto_the_globals(tmp_path: Path):
    path = tmp_path / "avwatch.yaml"
    path.write_text(YAML)
    config = load_model(ServiceConfig, path)
    engine = stream_engine_config(config.engine, config.streams[0])
    assert engine.merge_gap_s == 1.0
    assert engine.detectors["black"] == {"min_duration_s": 2.0, "picture_black_ratio": 0.99}
    assert engine.detectors["loudness"] == {"preset": "atsc_a85"}
    assert config.streams[0].name == "news"
    assert "s3cret" not in repr(config)  # secrets never show in logs or reprs


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("streams: [{id: a, url: x}, {id: a, url: y}]", "used twice"),
        ("streams: [{id: a, ur: x}]", "streams.0.ur"),
        ("hooks: [{stream: a, type: black}]", "exactly one of url or command"),
        ("port: 99999", "port"),
        ("- just\n- a list", "mapping"),
        ("a: [unclosed", "not valid YAML"),
    ],
    ids=["duplicate-id", "typo", "hook-without-action", "bad-port", "not-a-mapping", "bad-yaml"],
)
def test_bad_config_says_what_is_wrong(tmp_path: Path, text: str, says: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=says):
        load_model(ServiceConfig, path)


def test_a_streams_expect_merges_onto_the_engines_and_sets_what_judges_it():
    from avwatch.config import detector_options
    from avwatch.detectors.captions import CaptionsDetector

    config = ServiceConfig.model_validate(
        {
            "engine": {"expect": {"captions": True}},
            "streams": [
                {"id": "a", "url": "udp://127.0.0.1:5000"},
                {"id": "b", "url": "udp://127.0.0.1:5001", "expect": {"captions": False}},
            ],
        }
    )
    a, b = (stream_engine_config(config.engine, s) for s in config.streams)
    assert detector_options(a, CaptionsDetector) == {"expected": True}
    assert detector_options(b, CaptionsDetector) == {"expected": False}
    with pytest.raises(ValidationError, match=r"expect\.subtitles"):
        ServiceConfig.model_validate({"engine": {"expect": {"subtitles": True}}})


def test_a_stream_may_run_at_its_own_profile():
    config = ServiceConfig.model_validate(
        {
            "engine": {"profile": "qc"},
            "streams": [
                {"id": "a", "url": "udp://127.0.0.1:5000"},
                {"id": "b", "url": "udp://127.0.0.1:5001", "profile": "live"},
            ],
        }
    )
    a, b = (stream_engine_config(config.engine, s) for s in config.streams)
    assert (a.profile, b.profile) == ("qc", "live")
