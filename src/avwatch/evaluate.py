"""Detection quality, measured: score detector events against exact ground truth.

Matching is one-to-one on overlap: a found event and a truth event of the same
type match when their intervals overlap once each is widened by
``tolerance_s``; pairs are taken greedily, largest overlap first. Per type the
scorer counts true positives, false positives and misses, and the onset error
(|found start - true start|) of every match.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avwatch.config import EngineConfig
from avwatch.pipeline import check

__all__ = ["EvalResult", "TypeScore", "evaluate_dir", "match_events"]

MEDIA_SUFFIXES = (".mp4", ".ts", ".mkv", ".mov", ".mxf", ".avi", ".wav")

Event = dict[str, Any]


@dataclass
class TypeScore:
    type: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    onset_errors: list[float] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, Any]:
        errors = sorted(self.onset_errors)
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "onset_error_median_s": round(statistics.median(errors), 4) if errors else None,
            "onset_error_p90_s": round(errors[int(0.9 * (len(errors) - 1))], 4) if errors else None,
        }


@dataclass
class EvalResult:
    scores: dict[str, TypeScore]
    files: dict[str, dict[str, list[Event]]]  # name -> {"missed": [...], "false_alarms": [...]}

    def as_dict(self) -> dict[str, Any]:
        return {
            "types": {t: s.as_dict() for t, s in sorted(self.scores.items())},
            "files": self.files,
        }


def _overlap(a: Event, b: Event, tolerance_s: float) -> float:
    a_end = float(a["end"] if a["end"] is not None else a["start"])
    b_end = float(b["end"] if b["end"] is not None else b["start"])
    return min(a_end, b_end) - max(float(a["start"]), float(b["start"])) + 2 * tolerance_s


def match_events(
    found: list[Event], truth: list[Event], tolerance_s: float
) -> tuple[list[tuple[Event, Event]], list[Event], list[Event]]:
    """One-to-one matches (found, truth), then unmatched found and unmatched truth."""
    candidates = [
        (_overlap(f, t, tolerance_s), i, j)
        for i, f in enumerate(found)
        for j, t in enumerate(truth)
        if f["type"] == t["type"] and _overlap(f, t, tolerance_s) > 0
    ]
    used_found: set[int] = set()
    used_truth: set[int] = set()
    pairs = []
    for _, i, j in sorted(candidates, reverse=True):
        if i not in used_found and j not in used_truth:
            used_found.add(i)
            used_truth.add(j)
            pairs.append((found[i], truth[j]))
    return (
        pairs,
        [f for i, f in enumerate(found) if i not in used_found],
        [t for j, t in enumerate(truth) if j not in used_truth],
    )


def score(
    results: Iterable[tuple[str, list[Event], list[Event]]], tolerance_s: float
) -> EvalResult:
    """Score (name, found, truth) triples."""
    scores: dict[str, TypeScore] = {}
    files: dict[str, dict[str, list[Event]]] = {}
    for name, found, truth in results:
        for event in (*found, *truth):
            scores.setdefault(event["type"], TypeScore(event["type"]))
        pairs, false_alarms, missed = match_events(found, truth, tolerance_s)
        for f, t in pairs:
            scores[t["type"]].tp += 1
            scores[t["type"]].onset_errors.append(abs(f["start"] - t["start"]))
        for f in false_alarms:
            scores[f["type"]].fp += 1
        for t in missed:
            scores[t["type"]].fn += 1
        if false_alarms or missed:
            files[name] = {"missed": missed, "false_alarms": false_alarms}
    return EvalResult(scores, files)


def corpus_files(directory: Path) -> list[tuple[Path, list[Event]]]:
    """Media files of a corpus directory with the events of their ``NAME.truth.json``."""
    pairs = []
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() not in MEDIA_SUFFIXES:
            continue
        truth_path = path.with_name(path.stem + ".truth.json")
        truth = json.loads(truth_path.read_text())["events"] if truth_path.exists() else []
        pairs.append((path, truth))
    return pairs


def evaluate_dir(
    directory: Path,
    config: EngineConfig | None = None,
    detectors: Iterable[str] | None = None,
    tolerance_s: float = 0.5,
    peer: str | None = None,
) -> EvalResult:
    """Run avwatch (or the named peer, "ffmpeg") on every file of a corpus directory
    and score it."""
    keys = list(detectors) if detectors is not None else None
    triples = []
    for path, truth in corpus_files(directory):
        if peer == "ffmpeg":
            from avwatch.peer_ffmpeg import ffmpeg_events

            found = ffmpeg_events(path)
        else:
            found = [i.to_report() for i in check(str(path), config, keys).incidents]
        triples.append((path.name, found, truth))
    return score(triples, tolerance_s)
