"""Signals on their way to a stream page: bucketed, sent once, and not kept in the
worker once sent (a live stream runs for months)."""

from __future__ import annotations

from avwatch.config import detector_config
from avwatch.detectors.base import available_detectors
from avwatch.service.signals import BUCKET_S, HISTORY_S, SignalBuckets, SignalHistory
from avwatch.types import StreamInfo


def test_a_live_detector_holds_only_what_came_since_the_last_status():
    cls = available_detectors()["black"]
    detector = cls(detector_config(cls, None), StreamInfo("x", "mpegts", None, None, None))
    buckets = SignalBuckets(wall_of=lambda t: 1000.0 + t)
    held, sent = 0, 0
    for second in range(600):  # ten minutes at 25 pictures a second, a status every 2 s
        for i in range(25):
            detector.record("black_ratio", second + i / 25, (second % 7) / 7)
        held = max(held, len(detector.signals["black_ratio"]))
        if second % 2 == 1:
            points = buckets.fresh([detector])["black_ratio"]
            sent += len(points)
            assert all(low <= high for _, low, high in points)
    assert held == 50  # two seconds' worth, never more
    assert sent == 600 / BUCKET_S  # every bucket of media, once
    assert buckets.fresh([detector]) == {}  # nothing new: nothing sent again


def test_the_service_keeps_ten_minutes_of_every_signal_however_sparse():
    history = SignalHistory()
    for second in range(0, 3 * 3600, 5):  # three hours of a signal sampled every 5 s
        history.add("s", {"sparse": [[1000.0 + second, 1.0, 2.0]]})
    points = history.get("s")["sparse"]
    assert len(points) == HISTORY_S / 5 + 1  # ten minutes' worth, both ends kept
    assert points[-1][0] - points[0][0] == HISTORY_S
