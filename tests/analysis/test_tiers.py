"""Analysis tiers: fast decodes every picture without deblocking, patrol decodes
keyframes alone and switches to full GOP by GOP when escalated."""

from __future__ import annotations

import shutil
from fractions import Fraction
from itertools import pairwise
from typing import Any

import pytest
from helpers import of_type, run

from avwatch.analysis.check import check
from avwatch.analysis.escalation import Escalation, FullSlots
from avwatch.config import EngineConfig
from avwatch.config import Escalation as EscalationConfig
from avwatch.decode.reader import MediaReader
from avwatch.input.source import open_input
from avwatch.lab.synth import Defect
from avwatch.types import DecodeIssue, VideoFrame

# x264's veryfast writes B-frames, CABAC and deblocking, as broadcast encoders do: the
# reorder delay is what patrol's drained keyframes and the GOP switches must handle.
BROADCAST = {"preset": "veryfast", "noise_levels": 2, "fps": Fraction(25), "suffix": ".ts"}
ALONE = {"escalation": {"escalate_s": 0, "rotate_every_s": 0}}


def samples(path, analysis, full_wanted=None):
    reader = MediaReader(open_input(str(path)), str(path), analysis=analysis)
    if full_wanted is not None:
        reader.full_wanted = full_wanted
    return list(reader.samples())


def test_patrol_decodes_each_keyframe_alone_and_at_once(make):
    path, _ = make("tier_gops", duration_s=10, **BROADCAST)
    full = [s for s in samples(path, "full") if isinstance(s, VideoFrame)]
    patrol = samples(path, "patrol")
    keys = [s for s in patrol if isinstance(s, VideoFrame)]
    assert not [s for s in patrol if isinstance(s, DecodeIssue)]  # no picture "lost"
    # x264 adds keyframes at the picture's cuts beside its regular 2 s spacing.
    assert [k.time for k in keys] == [f.time for f in full if f.keyframe]
    assert len(keys) >= 5 and all(k.sampled and k.keyframe for k in keys)
    # Each stands for the pictures up to the next one, at most one regular spacing.
    for key, after in pairwise(keys):
        assert after.time - 1e-6 <= key.time + key.duration <= key.time + 2.0 + 1e-6
    # The keyframe's picture is the one full decoding makes of it.
    first_full = next(f for f in full if f.keyframe)
    assert (keys[0].luma == first_full.luma).all()


def test_patrol_switches_to_full_at_keyframes_without_damage(make):
    path, _ = make("tier_gops", duration_s=10, **BROADCAST)
    full = [s for s in samples(path, "full") if isinstance(s, VideoFrame)]
    keys = [f.time for f in full if f.keyframe]
    wanted = [i % 3 != 0 for i in range(len(keys))]  # patrol, full, full, patrol, ...
    answers = iter(wanted)
    got = samples(path, "patrol", lambda: next(answers))
    frames = [s for s in got if isinstance(s, VideoFrame)]
    assert not [s for s in got if isinstance(s, DecodeIssue)]  # no concealment, no loss
    patrolled = [k for k, w in zip(keys, wanted, strict=True) if not w]
    assert [f.time for f in frames if f.sampled] == patrolled
    # The GOPs in full: every picture full decoding gives, in order, none missing.
    ends = [*keys[1:], float("inf")]
    expected = [
        f.time
        for f in full
        if any(w and k <= f.time < end for k, w, end in zip(keys, wanted, ends, strict=True))
    ]
    assert [f.time for f in frames if not f.sampled] == expected


def test_fast_decodes_every_picture_and_finds_the_same(make):
    path, _ = make("tier_fast", duration_s=8, **BROADCAST, defects=[Defect("black", 3.0, 4.0)])
    full, fast = run(path), run(path, analysis="fast")
    assert fast.video_frames == full.video_frames == 200
    assert fast.summary["analysis"]["tier"] == "fast"
    assert [(i.type, i.start, i.end) for i in fast.incidents] == [
        (i.type, i.start, i.end) for i in full.incidents
    ]


def test_patrol_judges_long_picture_defects_on_keyframes(make):
    path, truth = make(
        "tier_long",
        duration_s=36,
        **BROADCAST,
        defects=[
            Defect("black", 4.0, 10.0),
            Defect("freeze", 15.0, 22.0),
            Defect("video_loss", 27.0, 32.0),
        ],
    )
    result = run(path, analysis="patrol", **ALONE)
    for event in truth:
        (found,) = of_type(result, event["type"])
        # At the keyframe spacing: within one GOP (2 s) of the truth at each end.
        assert found.start == pytest.approx(event["start"], abs=2.0)
        assert found.end == pytest.approx(event["end"], abs=2.0)
        if event["type"] != "video_loss":  # and when it began, as far as keyframes tell
            assert found.details["began_after"] < event["start"] <= found.start + 0.05
    analysis = result.summary["analysis"]
    assert analysis["pictures_in_full"] == 0 and analysis["keyframe_spacing_s"] == 2.0
    # Lip sync and dropped frames are not judged on keyframes: said so, never "in sync".
    assert result.summary["av_sync"]["not_judged_s"] > 30
    assert result.summary["av_sync"]["segments"] == []
    assert not of_type(result, "dropped_frames") and not of_type(result, "av_sync")


def test_escalation_brings_full_analysis_that_dates_the_end(make):
    path, _ = make("tier_escalate", duration_s=16, **BROADCAST, defects=[Defect("black", 4.7, 8.3)])
    full = of_type(run(path, ["black"]), "black")
    alone = run(path, ["black"], analysis="patrol", **ALONE)
    escalated = run(
        path, ["black"], analysis="patrol", escalation={"escalate_s": 3, "rotate_every_s": 0}
    )
    (patrolled,) = of_type(alone, "black")
    (confirmed,) = of_type(escalated, "black")
    assert escalated.summary["analysis"]["escalations"] >= 1
    assert escalated.summary["analysis"]["pictures_in_full"] > 0
    # The end is dated to the picture once in full; on keyframes alone, to the GOP.
    assert confirmed.end == pytest.approx(full[0].end, abs=0.05)
    assert abs(patrolled.end - full[0].end) > 0.5
    # The start, in both, at the first keyframe that showed it: within one spacing.
    assert 0 < confirmed.start - full[0].start <= 2.0


def test_content_repeating_with_the_keyframes_is_no_freeze(make):
    """A pattern that repeats every second looks the same on every keyframe (aliasing):
    patrol asks for a look in full, and neither it nor the switch calls it frozen."""
    from avwatch.lab.corpus import PATTERN

    fields = {k: v for k, v in PATTERN.items() if k != "defects"}
    path, _ = make("tier_pattern", duration_s=14, **fields)
    for escalation in ({"escalate_s": 0, "rotate_every_s": 0}, {"rotate_every_s": 0}):
        result = run(path, ["freeze"], analysis="patrol", escalation=escalation)
        assert not of_type(result, "freeze")
    assert result.summary["analysis"]["escalations"] >= 1


def test_escalation_holds_full_for_escalate_s_then_patrols():
    now = [0.0]
    escalation = Escalation(
        EscalationConfig(escalate_s=10, rotate_every_s=0), lambda: now[0], name="a"
    )
    assert not escalation.full_wanted()
    escalation.sign("black suspected")
    now[0] = 9.0
    assert escalation.full_wanted()
    now[0] = 10.5
    assert not escalation.full_wanted()
    assert escalation.status()["escalations"] == 1


def test_full_slots_are_shared_and_a_refusal_counted():
    slots = FullSlots(1)
    now = [0.0]
    a, b = (
        Escalation(EscalationConfig(rotate_every_s=0), lambda: now[0], slots=slots, name=n)
        for n in "ab"
    )
    a.sign("x")
    b.sign("y")
    assert a.full_wanted() and not b.full_wanted()
    assert b.status()["full_refused"] == 1 and slots.in_use == 1
    a.release()
    assert b.full_wanted() and slots.in_use == 1


def test_each_stream_gets_its_rotation_slice():
    now = [0.0]
    escalation = Escalation(
        EscalationConfig(rotate_every_s=100, rotate_for_s=10), lambda: now[0], name="news"
    )
    in_full = []
    for second in range(300):
        now[0] = float(second)
        in_full.append(escalation.full_wanted())
    assert sum(in_full) == 30  # 10 s in every 100 s
    assert escalation.status()["rotations"] == 3
    assert escalation.status()["escalations"] == 0


def test_a_file_is_patrolled_alike_from_any_folder(make, tmp_path, monkeypatch):
    # The rotation slice's phase comes from the file's name, not its folder: a 4 s clip
    # whose temporary folder put a slice at its start had fewer keyframes decoded alone
    # (a CLI test failed about once in twenty runs).
    path, _ = make("tier_anywhere", duration_s=4)
    names: list[str] = []

    def recorded(*args: Any, name: str = "", **kwargs: Any) -> Escalation:
        names.append(name)
        return Escalation(*args, name=name, **kwargs)

    monkeypatch.setattr("avwatch.analysis.check.Escalation", recorded)
    summaries = []
    for folder in ("a", "some/deeper/folder"):
        copy = tmp_path / folder / path.name
        copy.parent.mkdir(parents=True)
        shutil.copy(path, copy)
        summaries.append(check(str(copy), EngineConfig(analysis="patrol")).summary["analysis"])
    assert names == [path.name, path.name]
    assert summaries[0] == summaries[1]
