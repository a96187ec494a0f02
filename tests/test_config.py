import pytest

from avwatch.analysis.analyzer import StreamAnalyzer
from avwatch.config import EngineConfig, detector_options, load_model, merge_overrides
from avwatch.detectors.base import load_detector
from avwatch.errors import ConfigError
from avwatch.types import AudioInfo, StreamInfo


def test_no_file_means_defaults():
    assert load_model(EngineConfig, None) == EngineConfig()


def test_empty_file_means_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_model(EngineConfig, path) == EngineConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("analysis_width: 10\n", "analysis_width"),
        ("[1, 2]\n", "must be a mapping"),
        ("detectors: {black: {min_duration_s: [\n", "not valid YAML"),
        ("colour: blue\n", "colour"),
        # "explode" would stop decoding at the first damaged slice: not offered.
        ("decoder_error_detection: explode\n", "decoder_error_detection"),
    ],
    ids=["out-of-bounds", "not-a-mapping", "bad-yaml", "unknown-key", "unknown-choice"],
)
def test_bad_config_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "avwatch.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_model(EngineConfig, path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_model(EngineConfig, tmp_path / "nope.yaml")


def test_unknown_detector_in_config_is_an_error():
    info = StreamInfo("x", "t", None, None, AudioInfo("aac", 48000, 2, "stereo", ("FL", "FR")))
    with pytest.raises(ConfigError, match="unknown detectors: blak"):
        StreamAnalyzer(info, EngineConfig(detectors={"blak": {}}))


def test_merge_overrides_is_deep():
    base = {"black": {"min_duration_s": 1.0, "picture_black_ratio": 0.9}, "freeze": {}}
    merged = merge_overrides(base, {"black": {"min_duration_s": 2.0}})
    assert merged == {"black": {"min_duration_s": 2.0, "picture_black_ratio": 0.9}, "freeze": {}}
    assert base["black"]["min_duration_s"] == 1.0


def _alias_bomb(under: str) -> str:
    """Nine aliases of nine aliases, eight times over: 9**9 values once expanded."""
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    return "\n".join(lines) + f"\n{under}\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"analysis_width: 320\n\xff\xfe\n", r"not UTF-8 text \(byte 20\)"),
        (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested more than 64 deep"),
        (b"analysis_width: [1, 2\n", "not valid YAML at line 2, column 1: expected ','"),
        (_alias_bomb("detectors: {black: *a8}").encode(), "aliases are expanded"),
        (b"x" * (2 << 20), "not a config file"),
    ],
    ids=["not-utf8", "deep", "syntax", "alias-bomb", "huge"],
)
def test_any_bytes_give_one_clear_line(tmp_path, data, message):
    path = tmp_path / "avwatch.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=message) as raised:
        load_model(EngineConfig, path)
    assert "\n" not in str(raised.value)


def test_the_service_config_refuses_an_alias_bomb_as_check_does(tmp_path):
    from avwatch.service.config import ServiceConfig

    path = tmp_path / "serve.yaml"
    path.write_text(_alias_bomb("engine: {detectors: {black: *a8}}"))
    with pytest.raises(ConfigError, match="aliases are expanded"):
        load_model(ServiceConfig, path)


def test_a_profile_sets_detector_options_and_the_users_own_win():
    freeze = load_detector("freeze")
    assert detector_options(EngineConfig(), freeze) == {}
    assert detector_options(EngineConfig(profile="qc"), freeze) == {"min_duration_s": 0.3}
    mine = EngineConfig(profile="qc", detectors={"freeze": {"min_duration_s": 1.0}})
    assert detector_options(mine, freeze) == {"min_duration_s": 1.0}
