"""Properties of what takes untrusted input, on inputs Hypothesis makes up: transport
bytes, timestamps, config files. Each holds for every input, not only the ones we
thought of."""

from __future__ import annotations

import itertools
import os
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avwatch.analysis.check import check
from avwatch.config import EngineConfig, load_model, read_yaml_mapping
from avwatch.decode.clock import WRAP_TICKS, PtsClock
from avwatch.errors import AvwatchError, ConfigError
from avwatch.transport.analyser import TsAnalyzer

FIXTURES_OK = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def ts_clip(make) -> bytes:
    path, _ = make("property_ts", suffix=".ts", duration_s=2)
    return path.read_bytes()[: 188 * 400]


def _analysed(chunks: list[bytes]) -> tuple[dict[str, object], list[tuple[object, ...]]]:
    analyser = TsAnalyzer()
    for chunk in chunks:
        analyser.feed(chunk)
    analyser.finish()
    events = [(e.type, e.time, e.packet, e.pid) for e in analyser.events]
    return analyser.summary(), events


@FIXTURES_OK
@given(
    changes=st.lists(st.tuples(st.integers(0, 188 * 400 - 1), st.integers(0, 255)), max_size=60),
    cuts=st.lists(st.integers(1, 188 * 400 - 1), max_size=12),
)
def test_the_ts_analyser_takes_any_bytes_in_any_chunks_alike(ts_clip, changes, cuts):
    data = bytearray(ts_clip)
    for at, value in changes:
        data[at] = value
    whole = _analysed([bytes(data)])
    bounds = [0, *sorted(set(cuts)), len(data)]
    chunked = _analysed([bytes(data[a:b]) for a, b in itertools.pairwise(bounds)])
    assert chunked == whole


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_the_ts_analyser_never_fails_on_garbage(data):
    analyser = TsAnalyzer()
    analyser.feed(data)
    analyser.finish()
    analyser.summary()


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(-(2**34), 2**34), st.integers(0, 9000)), min_size=1, max_size=40
    ),
    start=st.integers(0, WRAP_TICKS - 1),
)
def test_the_pts_clock_never_jumps_further_than_its_limits(steps, start):
    clock = PtsClock(Fraction(1, 90000), wraps=True, max_gap_s=60.0, max_backstep_s=1.0)
    pts = start
    previous, _ = clock.seconds(pts, 0)
    for delta, duration in steps:
        pts = (pts + delta) % WRAP_TICKS  # 33-bit PTS, as the transport carries it
        now, _ = clock.seconds(pts, duration)
        assert -1.0 - 1e-6 <= now - previous <= 60.0 + 0.1 + 1e-6
        previous = now


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 90000 * 60), st.integers(0, WRAP_TICKS - 1), st.integers(1, 200))
def test_a_steady_pts_stays_steady_across_the_wrap(step, start, count):
    clock = PtsClock(Fraction(1, 90000), wraps=True)
    times = [clock.seconds((start + k * step) % WRAP_TICKS, step)[0] for k in range(count)]
    assert all(b - a == pytest.approx(step / 90000) for a, b in itertools.pairwise(times))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=2000) | st.text(max_size=400).map(str.encode))
def test_any_config_bytes_give_a_mapping_or_one_clear_line(tmp_path_factory, data):
    path: Path = tmp_path_factory.mktemp("cfg") / "avwatch.yaml"
    path.write_bytes(data)
    try:
        raw = read_yaml_mapping(path)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(raw, dict)
    try:
        load_model(EngineConfig, path)
    except ConfigError as exc:
        assert str(exc).startswith(str(path))


# `make fuzz` raises this to thousands; the suite runs a few on every submission.
CHECK_EXAMPLES = int(os.environ.get("AVWATCH_FUZZ_EXAMPLES", "15"))


@pytest.fixture(scope="module")
def clips(make) -> list[Path]:
    return [make("fuzz_ts", suffix=".ts", duration_s=2)[0], make("fuzz_mp4", duration_s=2)[0]]


@settings(
    max_examples=CHECK_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    which=st.integers(0, 1),
    changes=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=200
    ),
    cut=st.floats(0.05, 1.0),
)
def test_check_on_a_damaged_file_reports_or_says_why(tmp_path_factory, clips, which, changes, cut):
    clean = clips[which].read_bytes()
    data = bytearray(clean[: max(1, int(len(clean) * cut))])
    for where, value in changes:
        data[int(where * len(data))] = value
    path = tmp_path_factory.mktemp("fuzz") / f"damaged{clips[which].suffix}"
    path.write_bytes(data)
    try:
        result = check(str(path))
    except AvwatchError:
        return  # one clear line: unusable input
    assert result.duration_s >= 0
