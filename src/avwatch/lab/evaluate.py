"""Detection quality, measured: score detector events against exact ground truth.

Matching is one-to-one on overlap: a found event and a truth event of the same
type match when their intervals overlap once each is widened by
``tolerance_s``; pairs are taken greedily, largest overlap first. Per type the
scorer counts true positives, false positives and misses, and the onset error
(|found start - true start|) of every match.

Two refinements keep the count to what the tolerance can tell apart:

- Truth events of one type less than two tolerances apart that one found event
  spans are one event: widened, they touch, and the incident that covers them
  reports the passage they make (a clipped beat every 0.6 s, its 0.5 s end hold).
  Two incidents for one truth event still cost a false alarm: that is two alerts.
- Truth marked ``details.either_way`` is neither required nor a false alarm where
  found (clipping whose samples touched full scale fewer times a window than the
  detector's rule counts): a found event matched to it is dropped, and it is never
  a miss.

A/V offset is a measurement, not only an event: every confident ``av_sync``
estimate whose window lies inside one span of the truth's ``av_offsets`` is
compared with the true offset, and the errors are summed up per kind of
content (line-up pattern, talking head, cuts, a film with its own sound,
recordings under unrelated sound, other).

False alarms are also counted per hour of media, per type: on a clean set
(``avwatch corpus build --set clean``) that is the rate an operator would see.
A type with nothing to find and nothing found has no row of its own; the report
names it (``nothing_found``) when a detector that emits it ran on the files, so
that "no false alarm" is said of what was watched, not of what was left out.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from avwatch.analysis.check import CheckResult, check
from avwatch.config import EngineConfig, Expect, detector_config, detector_options
from avwatch.detectors.av_sync.detector import AvSyncConfig, AvSyncDetector
from avwatch.detectors.base import load_detector
from avwatch.lab.truth import at_profile
from avwatch.transport.tr101290 import TR101290_TYPES

__all__ = ["EvalResult", "OffsetScore", "TypeScore", "evaluate_dir", "match_events"]

MEDIA_SUFFIXES = (".mp4", ".ts", ".mkv", ".mov", ".mxf", ".avi", ".wav")
WRONG_OFFSET_MS = 40.0  # an offset estimate further than this from the truth is wrong

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
class OffsetScore:
    """A/V offset estimates of one kind of content against the true offset."""

    errors_ms: list[float] = field(default_factory=list)  # |estimate - truth|, judged ones
    estimates: int = 0  # every estimate the detector made
    known: int = 0  # the confident ones (windows across a true step are not judged)
    files: int = 0

    def as_dict(self) -> dict[str, Any]:
        errors = sorted(self.errors_ms)
        return {
            "files": self.files,
            "estimates": self.estimates,
            "known": self.known,
            "known_share": round(self.known / self.estimates, 3) if self.estimates else 0.0,
            "judged": len(errors),
            "error_median_ms": round(statistics.median(errors), 1) if errors else None,
            "error_p90_ms": round(errors[int(0.9 * (len(errors) - 1))], 1) if errors else None,
            "error_max_ms": round(errors[-1], 1) if errors else None,
            "wrong_share": (
                round(sum(e > WRONG_OFFSET_MS for e in errors) / len(errors), 4) if errors else None
            ),
        }


@dataclass
class EvalResult:
    scores: dict[str, TypeScore]
    files: dict[str, dict[str, list[Event]]]  # name -> {"missed": [...], "false_alarms": [...]}
    offsets: dict[str, OffsetScore] = field(default_factory=dict)  # by sync_content
    found: dict[str, list[Event]] = field(default_factory=dict)  # name -> every event found
    left_out: dict[str, int] = field(default_factory=dict)
    """Truth events not scored, by type: shorter than two keyframe spacings (patrol)."""
    media_s: float = 0.0
    watched: set[str] = field(default_factory=set)
    """Event types a detector that ran could have raised, on some file."""

    def as_dict(self) -> dict[str, Any]:
        hours = self.media_s / 3600
        out: dict[str, Any] = {
            "types": {
                t: {
                    **s.as_dict(),
                    "false_alarms_per_hour": round(s.fp / hours, 2) if hours else None,
                }
                for t, s in sorted(self.scores.items())
            },
            "media_hours": round(hours, 3),
            "false_alarms_per_hour": (
                round(sum(s.fp for s in self.scores.values()) / hours, 2) if hours else None
            ),
            "files": self.files,
        }
        quiet = sorted(self.watched - set(self.scores))
        if quiet:
            out["nothing_found"] = quiet
        if self.offsets:
            out["av_offset"] = {k: v.as_dict() for k, v in sorted(self.offsets.items())}
        if self.left_out:
            out["short_events_left_out"] = dict(sorted(self.left_out.items()))
        return out


# What patrol judges on keyframes alone; its sound and transport are analysed in full.
PATROL_PICTURE_TYPES = frozenset({"black", "freeze", "video_loss"})


def _long_enough(
    found: list[Event], truth: list[Event], shortest_s: float, left_out: dict[str, int]
) -> tuple[list[Event], list[Event]]:
    """Patrol judges pictures on keyframes: a picture defect is scored when it is longer
    than two keyframe spacings. Shorter ones are left out, with what was found of them
    (neither a hit nor a false alarm)."""
    short = [
        t
        for t in truth
        if t["type"] in PATROL_PICTURE_TYPES and float(t["end"]) - float(t["start"]) <= shortest_s
    ]
    for t in short:
        left_out[t["type"]] = left_out.get(t["type"], 0) + 1

    def of_short(f: Event) -> bool:
        return any(t["type"] == f["type"] and _overlap(f, t, 0.0) > 0 for t in short)

    kept = [f for f in found if not of_short(f)]
    return kept, [t for t in truth if t not in short]


def dating_against(reference: EvalResult, other: EvalResult) -> dict[str, dict[str, Any]]:
    """How far ``other``'s events are dated from ``reference``'s (the same file, type
    and overlapping): by type, the median and largest start and end differences."""
    starts: dict[str, list[float]] = {}
    ends: dict[str, list[float]] = {}
    for name, found in other.found.items():
        pairs, _, _ = match_events(found, reference.found.get(name, []), 0.0)
        for f, r in pairs:
            starts.setdefault(f["type"], []).append(abs(float(f["start"]) - float(r["start"])))
            if f["end"] is not None and r["end"] is not None:
                ends.setdefault(f["type"], []).append(abs(float(f["end"]) - float(r["end"])))
    out = {}
    for type_, diffs in sorted(starts.items()):
        end_diffs = sorted(ends.get(type_, []))
        diffs.sort()
        out[type_] = {
            "pairs": len(diffs),
            "start_median_s": round(statistics.median(diffs), 3),
            "start_max_s": round(diffs[-1], 3),
            "end_median_s": round(statistics.median(end_diffs), 3) if end_diffs else None,
            "end_max_s": round(end_diffs[-1], 3) if end_diffs else None,
            "within_1s": round(sum(d <= 1.0 for d in diffs) / len(diffs), 3),
        }
    return out


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


def spanned_as_one(truth: list[Event], found: list[Event], tolerance_s: float) -> list[Event]:
    """``truth`` with each run of same-type events less than two tolerances apart that
    one found event overlaps, every one of them, joined into one."""
    out: list[Event] = []
    spanning: set[int] = set()  # found events overlapping every member of out[-1]
    for event in sorted(truth, key=lambda e: (e["type"], float(e["start"]))):
        over = {
            i
            for i, f in enumerate(found)
            if f["type"] == event["type"] and _overlap(f, event, 0.0) > 0
        }
        last = out[-1] if out else None
        if (
            last is not None
            and last["type"] == event["type"]
            and _overlap(last, event, tolerance_s) > 0
            and spanning & over
        ):
            ends = [e for e in (last["end"], event["end"]) if e is not None]
            out[-1] = {**last, "end": max(ends) if ends else None}
            spanning &= over
        else:
            out.append(event)
            spanning = over
    return out


def score(
    results: Iterable[tuple[str, list[Event], list[Event]]], tolerance_s: float
) -> EvalResult:
    """Score (name, found, truth) triples."""
    scores: dict[str, TypeScore] = {}
    files: dict[str, dict[str, list[Event]]] = {}
    for name, found, truth in results:
        for event in (*found, *truth):
            scores.setdefault(event["type"], TypeScore(event["type"]))
        required = [t for t in truth if not t.get("details", {}).get("either_way")]
        either_way = [t for t in truth if t.get("details", {}).get("either_way")]
        required = spanned_as_one(required, found, tolerance_s)
        pairs, false_alarms, missed = match_events(found, required, tolerance_s)
        _, false_alarms, _ = match_events(false_alarms, either_way, tolerance_s)
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


def corpus_files(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Media files of a corpus directory with their ``NAME.truth.json`` (``events``,
    and for A/V cases ``av_offsets`` and ``sync_content``)."""
    pairs = []
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() not in MEDIA_SUFFIXES:
            continue
        truth_path = path.with_name(path.stem + ".truth.json")
        truth = json.loads(truth_path.read_text()) if truth_path.exists() else {"events": []}
        pairs.append((path, truth))
    return pairs


def offset_errors(result: CheckResult, spans: list[dict[str, Any]], window_s: float) -> list[float]:
    """|estimate - truth| (ms) for each confident estimate whose window lies inside one
    truth span; windows across a step of the true offset are not judged."""
    errors = []
    for centre, offset in result.signals.get("av_offset_ms", []):
        lo, hi = centre - window_s / 2, centre + window_s / 2
        for span in spans:
            if span["start"] - 1e-6 <= lo and hi <= span["end"] + 1e-6:
                errors.append(abs(offset - span["offset_ms"]))
                break
    return errors


def evaluate_dir(
    directory: Path,
    config: EngineConfig | None = None,
    detectors: Iterable[str] | None = None,
    tolerance_s: float = 0.5,
    peer: str | None = None,
) -> EvalResult:
    """Run avwatch (or the named peer, "ffmpeg") on every file of a corpus directory
    and score it."""
    config = config or EngineConfig()
    keys = list(detectors) if detectors is not None else None
    sync_config = detector_config(AvSyncDetector, detector_options(config, AvSyncDetector))
    window_s = cast(AvSyncConfig, sync_config).window_s
    triples = []
    offsets: dict[str, OffsetScore] = {}
    found_by_file: dict[str, list[Event]] = {}
    left_out: dict[str, int] = {}
    media_s = 0.0
    watched: set[str] = set()
    for path, truth in corpus_files(directory):
        events = at_profile(truth["events"], config.profile)
        media_s += float(truth.get("spec", {}).get("duration_s", 0.0))
        if peer == "ffmpeg":
            from avwatch.lab.peer_ffmpeg import PEER_TYPES, PeerSettings, ffmpeg_events

            found = ffmpeg_events(path, PeerSettings.of(config))
            watched |= PEER_TYPES
        else:
            expect = truth.get("expect")  # what this file must carry, if the corpus says
            checked = config.model_copy(update={"expect": Expect(**expect)}) if expect else config
            result = check(str(path), checked, keys)
            found = [i.to_report() for i in result.incidents]
            watched |= _watched(result)
            analysis = result.summary.get("analysis")
            if analysis is not None and analysis["tier"] == "patrol":
                shortest = 2 * analysis["keyframe_spacing_s"]
                found, events = _long_enough(found, events, shortest, left_out)
            sync = result.summary.get("av_sync")
            if sync and truth.get("av_offsets"):
                kind = offsets.setdefault(truth.get("sync_content", "other"), OffsetScore())
                kind.files += 1
                kind.estimates += sync["estimates"]
                kind.known += len(result.signals.get("av_offset_ms", []))
                kind.errors_ms += offset_errors(result, truth["av_offsets"], window_s)
        found_by_file[path.name] = found
        triples.append((path.name, found, events))
    scored = score(triples, tolerance_s)
    scored.offsets, scored.found, scored.left_out = offsets, found_by_file, left_out
    scored.media_s, scored.watched = media_s, watched
    return scored


def _watched(result: CheckResult) -> set[str]:
    """The event types the check of one file could have raised: those of the
    detectors that ran (``settings``), and TR 101 290's on a transport stream."""
    types = {t for key in result.settings for t in load_detector(key).emits}
    return types | TR101290_TYPES if "ts" in result.summary else types
