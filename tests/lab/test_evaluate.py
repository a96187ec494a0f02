"""The scorer, and the quick corpus held to the F1 floors kept in eval/floors.json."""

import json
from pathlib import Path

import pytest

from avwatch.cli import main
from avwatch.config import EngineConfig, Escalation
from avwatch.lab.evaluate import evaluate_dir, match_events, score

FLOORS = Path(__file__).parents[2] / "eval" / "floors.json"
# Patrol on keyframes alone (no escalation, no rotation): picture defects longer than
# two keyframe spacings, sound and transport as in full.
PATROL_FLOORS = Path(__file__).parents[2] / "eval" / "floors-patrol.json"
# The qc operating point: short defects reported too, and scored against the truth
# that holds at qc (single black frames, 0.1 s silences, 3 s loudness drifts).
QC_FLOORS = Path(__file__).parents[2] / "eval" / "floors-qc.json"


def ev(type_, start, end):
    return {"type": type_, "start": start, "end": end, "details": {}}


def test_matching_is_one_to_one_on_overlap():
    truth = [ev("black", 1.0, 2.0), ev("black", 5.0, 6.0)]
    found = [ev("black", 1.1, 1.9), ev("black", 1.2, 1.5), ev("freeze", 5.0, 6.0)]
    pairs, false_alarms, missed = match_events(found, truth, tolerance_s=0.0)
    assert pairs == [(found[0], truth[0])]  # the larger overlap wins
    assert false_alarms == [found[1], found[2]]  # a second piece, and the wrong type
    assert missed == [truth[1]]


def test_tolerance_lets_a_near_miss_match():
    pairs, _, _ = match_events([ev("silence", 2.3, 3.0)], [ev("silence", 1.0, 2.0)], 0.5)
    assert len(pairs) == 1
    pairs, _, _ = match_events([ev("silence", 2.3, 3.0)], [ev("silence", 1.0, 2.0)], 0.1)
    assert pairs == []


def test_scores_per_type():
    result = score(
        [
            ("a", [ev("black", 1.0, 2.0), ev("black", 7.0, 8.0)], [ev("black", 1.2, 2.0)]),
            ("b", [], [ev("black", 3.0, 4.0)]),
        ],
        tolerance_s=0.5,
    )
    black = result.scores["black"]
    assert (black.tp, black.fp, black.fn) == (1, 1, 1)
    assert black.precision == 0.5 and black.recall == 0.5 and black.f1 == 0.5
    assert black.onset_errors == [pytest.approx(0.2)]
    assert set(result.files) == {"a", "b"}


def test_one_incident_over_truth_events_closer_than_the_tolerance_finds_them_as_one():
    # Clipped beats 0.6 s apart: apart in the truth, one incident once coding smears them.
    truth = [ev("clipping", 8.53, 8.62), ev("clipping", 9.13, 9.23), ev("clipping", 9.74, 9.84)]
    merged = score([("a", [ev("clipping", 8.55, 9.83)], truth)], tolerance_s=0.5)
    assert (merged.scores["clipping"].tp, merged.scores["clipping"].fn) == (1, 0)
    # One incident per beat: each its own match, a short one never spans its neighbour.
    apart = score([("a", [ev("clipping", 8.53, 8.6), ev("clipping", 9.13, 9.2)], truth)], 0.5)
    clipping = apart.scores["clipping"]
    assert (clipping.tp, clipping.fp, clipping.fn) == (2, 0, 1)
    # Further apart than the tolerance can join: two events, one found.
    far = [ev("clipping", 1.0, 1.1), ev("clipping", 2.2, 2.3)]
    assert score([("a", [ev("clipping", 1.0, 2.3)], far)], 0.5).scores["clipping"].fn == 1


def test_truth_either_way_is_neither_a_miss_nor_a_false_alarm():
    touched = {"type": "clipping", "start": 2.0, "end": 2.01, "details": {"either_way": True}}
    required = ev("clipping", 5.0, 6.0)
    found = score(
        [("a", [ev("clipping", 2.0, 2.02), ev("clipping", 5.0, 6.0)], [touched, required])], 0.5
    )
    assert (found.scores["clipping"].tp, found.scores["clipping"].fp) == (1, 0)
    not_found = score([("a", [], [touched])], 0.5)
    assert (not_found.scores["clipping"].fn, not_found.scores["clipping"].tp) == (0, 0)


@pytest.mark.slow
def test_quick_corpus_meets_the_floors(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    assert main(["corpus", "build", str(corpus), "--quick"]) == 0
    truth_files = sorted(corpus.glob("*.truth.json"))
    assert len(truth_files) >= 12
    capsys.readouterr()
    assert main(["eval", str(corpus), "--json", "--floors", str(FLOORS)]) == 0, capsys.readouterr()
    report = json.loads(capsys.readouterr().out)
    floors = json.loads(FLOORS.read_text())
    assert set(floors["f1"]) <= set(report["types"])
    assert set(floors["av_offset_error_median_ms"]) <= set(report["av_offset"])

    alone = Escalation(escalate_s=0, rotate_every_s=0)
    patrol = evaluate_dir(corpus, EngineConfig(analysis="patrol", escalation=alone)).as_dict()
    for type_, floor in json.loads(PATROL_FLOORS.read_text())["f1"].items():
        assert patrol["types"][type_]["f1"] >= floor, (type_, patrol["types"][type_])
    # The long picture defects are what is scored: the short ones are left out.
    assert {"black", "freeze", "video_loss"} <= set(patrol["short_events_left_out"])
    assert all(patrol["types"][t]["tp"] >= 2 for t in ("black", "freeze", "video_loss"))

    capsys.readouterr()
    qc_run = ["eval", str(corpus), "--json", "--profile", "qc", "--floors", str(QC_FLOORS)]
    assert main(qc_run) == 0, capsys.readouterr()
    qc = json.loads(capsys.readouterr().out)
    assert set(json.loads(QC_FLOORS.read_text())["f1"]) <= set(qc["types"])
    # Found at qc, not at live: the dips' single black frames, the voice's pauses.
    assert qc["types"]["black"]["tp"] > report["types"]["black"]["tp"]
    assert qc["types"]["silence"]["tp"] > report["types"]["silence"]["tp"]


@pytest.mark.slow
def test_ffmpeg_peer_maps_its_filters_to_our_event_types(make):
    from avwatch.lab.peer_ffmpeg import ffmpeg_events
    from avwatch.lab.synth import Defect

    path, truth = make(
        "peer_clip",
        suffix=".ts",
        duration_s=12,
        defects=[Defect("black", 2.0, 3.0), Defect("silence", 5.0, 8.0)],
    )
    found = ffmpeg_events(path)
    pairs, _, missed = match_events(found, truth, tolerance_s=0.1)
    assert {t["type"] for _, t in pairs} == {"black", "silence"}, (found, truth)
    assert missed == []
