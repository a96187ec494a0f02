import pytest

from avwatch.analysis.incidents import IncidentTracker
from avwatch.types import DefectEvent, Severity


def ev(phase, time, type_="black", key="", **details):
    return DefectEvent(type_, phase, time, "test", Severity.ERROR, key, details)


def test_start_and_end_pair_into_one_incident():
    tracker = IncidentTracker()
    tracker.feed(ev("start", 1.0))
    tracker.feed(ev("end", 2.0))
    (incident,) = tracker.sorted()
    assert (incident.start, incident.end, incident.type) == (1.0, 2.0, "black")


def test_pieces_closer_than_merge_gap_become_one_and_counts_add():
    tracker = IncidentTracker(merge_gap_s=0.5)
    for start, end in ((1.0, 1.1), (1.4, 1.5), (3.0, 3.1)):
        tracker.feed(ev("start", start, "dropped_frames", count=2))
        tracker.feed(ev("end", end, "dropped_frames", count=2))
    first, second = tracker.sorted()
    assert (first.start, first.end, first.details["count"]) == (1.0, 1.5, 4)
    assert (second.start, second.details["count"]) == (3.0, 2)


def test_errors_repeated_every_merge_gap_by_float_steps_are_one_incident():
    # A PAT missing for 5 s: one error per 0.5 s, dated by adding 0.5 to the last
    # time seen, where 31.98 + 0.5 - 31.98 is 0.5000000000000036.
    tracker = IncidentTracker(merge_gap_s=0.5)
    due = 27.48
    for _ in range(10):
        due += 0.5
        tracker.feed(ev("start", due, "ts_pat_error"))
        tracker.feed(ev("end", due, "ts_pat_error"))
    (incident,) = tracker.sorted()
    assert incident.details["merged"] == 10
    assert incident.end == pytest.approx(32.48)


def test_keys_keep_concurrent_defects_apart():
    tracker = IncidentTracker()
    tracker.feed(ev("start", 1.0, "silence", "FL"))
    tracker.feed(ev("start", 1.5, "silence", "FR"))
    tracker.feed(ev("end", 3.0, "silence", "FL"))
    tracker.close_all(4.0)
    assert [(i.key, i.end) for i in tracker.sorted()] == [("FL", 3.0), ("FR", 4.0)]


def test_restated_start_moves_an_open_incident():
    tracker = IncidentTracker()
    tracker.feed(ev("start", 1.0))
    tracker.feed(ev("start", 1.2))
    tracker.feed(ev("end", 2.0))
    assert [(i.start, i.end) for i in tracker.sorted()] == [(1.2, 2.0)]


def test_listeners_hear_open_and_close():
    heard = []
    tracker = IncidentTracker(
        on_open=lambda i: heard.append(("open", i.start)),
        on_close=lambda i: heard.append(("close", i.end)),
    )
    tracker.feed(ev("start", 1.0))
    tracker.feed(ev("end", 2.0))
    assert heard == [("open", 1.0), ("close", 2.0)]
