"""The detector contract, checked on every registered detector, and the run tracker."""

import typing

import pytest

from avwatch.detectors.base import RunTracker, available_detectors
from avwatch.types import StreamInfo

UNIT_SUFFIXES = (
    "_s",
    "_ms",
    "_db",
    "_dbfs",
    "_dbtp",
    "_lufs",
    "_lu",
    "_ratio",
    "_levels",
    "_sigmas",
)
DETECTORS = available_detectors()


def test_builtins_are_registered_through_entry_points():
    assert set(DETECTORS) >= {
        "black",
        "freeze",
        "silence",
        "clipping",
        "loudness",
        "dropped_frames",
        "video_loss",
        "audio_loss",
    }


@pytest.mark.parametrize("key", sorted(DETECTORS))
def test_every_option_has_default_description_and_unit(key):
    cls = DETECTORS[key]
    assert cls.key == key and cls.emits and cls.description
    assert cls.needs or cls.takes_transport()  # a transport detector needs no media kind
    assert cls.Config.model_config.get("extra") == "forbid"
    for name, field in cls.Config.model_fields.items():
        assert field.description, f"{key}.{name} has no description"
        assert not field.is_required(), f"{key}.{name} has no default"
        annotation = typing.get_args(field.annotation) or (field.annotation,)
        if float in annotation:
            assert name.endswith(UNIT_SUFFIXES), f"{key}.{name} has no unit suffix"
            assert field.metadata, f"{key}.{name} has no bounds"


@pytest.mark.parametrize("key", sorted(DETECTORS))
def test_flush_on_an_empty_stream_emits_nothing(key):
    from avwatch.types import AudioInfo, VideoInfo

    info = StreamInfo(
        "x",
        "test",
        None,
        VideoInfo("h264", 64, 36, 25.0, "yuv420p", 64, 36),
        AudioInfo("aac", 48000, 2, "stereo", ("FL", "FR")),
    )
    detector = DETECTORS[key](DETECTORS[key].Config(), info)
    detector.flush(0.0)
    assert detector.events == []


def test_run_tracker_reports_back_dated_start_after_min_duration():
    run = RunTracker(min_duration_s=1.0)
    assert run.update(True, 0.0, 0.5) == ()
    assert run.update(True, 0.5, 1.0) == (("start", 0.0),)
    assert run.update(True, 1.0, 1.5) == ()
    assert run.update(False, 1.5, 2.0) == (("end", 1.5),)


def test_run_tracker_min_duration_allows_for_millisecond_timestamps():
    # A 10 s defect in Matroska (PTS rounded to 1 ms) can measure 9.9999 s long.
    run = RunTracker(min_duration_s=10.0)
    assert run.update(True, 0.0, 9.99994) == (("start", 0.0),)
    short = RunTracker(min_duration_s=10.0)
    assert short.update(True, 0.0, 9.99) == ()
    assert short.flush() == ()


def test_run_tracker_hysteresis_bridges_short_dropouts():
    run = RunTracker(min_duration_s=0.0, end_hold_s=0.3)
    assert run.update(True, 0.0, 0.1) == (("start", 0.0),)
    assert run.update(False, 0.1, 0.2) == ()
    assert run.update(True, 0.2, 0.3) == ()
    assert run.update(False, 0.3, 0.5) == ()
    assert run.update(False, 0.5, 0.7) == (("end", 0.3),)


def test_run_tracker_pts_gap_ends_a_run_and_short_runs_vanish():
    run = RunTracker(min_duration_s=1.0)
    run.update(True, 0.0, 0.5)
    assert run.update(True, 5.0, 5.5) == ()  # the first run never reached 1 s
    assert run.flush() == ()


def test_a_signal_in_none_of_the_detectors_plots_is_refused():
    from avwatch.detectors.base import Detector, DetectorConfig, Plot
    from avwatch.errors import DetectorError

    class Plotted(Detector[DetectorConfig]):
        key = "plotted"
        needs = frozenset({"video"})
        emits = ()
        Config = DetectorConfig
        plots = (Plot("Level", ("level",)),)

    detector = Plotted(DetectorConfig(), StreamInfo("x", "mpegts", None, None, None))
    detector.record("level", 0.0, 1.0)
    assert list(detector.signals["level"]) == [(0.0, 1.0)]
    with pytest.raises(DetectorError, match="'levle' is in none of its plots"):
        detector.record("levle", 0.0, 1.0)
