"""The impaired-media corpus: clips with defects at exact places, and their truth.

Content defects are applied to the raw pictures and samples before encoding
(avwatch.lab.synth), so every truth event is exact by construction. Each case is
one file plus ``NAME.truth.json``. ``quick`` builds a small corpus for CI; the
full one adds the broadcast formats (SD interlaced MPEG-2, 720p50, 1080p29.97,
HEVC, 5.1, 44.1 kHz).

Real pictures come from OpenCV's pedestrian camera clip (Debian's opencv-doc),
real speech from Asterisk's prompts (asterisk-core-sounds-en-wav), both fetched
and cached under ``$AVWATCH_MEDIA_CACHE`` or ~/.cache/avwatch/media.

A/V sync cases move the sound against the pictures by a known offset: a
line-up pattern (flash and beep), a drawn presenter whose mouth follows real
speech, and cuts with a struck sound, from -200 to +300 ms and with steps
mid-clip. Their truth adds ``av_offsets`` (the true offset over time) and
``sync_content`` to the truth file.

Transport cases damage the bytes of a clean MPEG-TS (lost packets, bit errors
in the payload, a continuity jump that loses nothing, flagged packets, PAT and
PMT gaps, and a clean low-bitrate stream as the negative); their truth comes from
avwatch.lab.damage: transport events from what was done, picture damage measured
by decoding the damaged file against the clean one.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from avwatch.detectors._loss import LossConfig
from avwatch.detectors.av_sync.detector import AvSyncConfig
from avwatch.detectors.dropped_frames import DroppedFramesConfig
from avwatch.detectors.loudness.detector import LoudnessConfig
from avwatch.errors import AvwatchError
from avwatch.lab.damage import Damage, audio_truth, damage_ts, picture_truth, transport_truth
from avwatch.lab.realmedia import HELD_OUT, MUSIC, TUNING, fetch
from avwatch.lab.synth import ClipSpec, Defect, make_clip, offset_truth
from avwatch.lab.synth.qc_truth import without_repeats
from avwatch.lab.truth import MERGE_GAP_S, TruthEvent

log = logging.getLogger(__name__)

__all__ = ["CORPUS_SETS", "Case", "build", "cases", "music_cases"]

REAL_VTEST = "real:vtest"  # resolved to the cached file at build time
REAL_SPEECH = "real:speech"
# (name, spec, suffix, transport damages) of one corpus file.
Case = tuple[str, ClipSpec, str, list[Damage]]
CORPUS_SETS = ("tuning", "heldout", "clean")

# name: (ClipSpec fields, file suffix)
FORMATS: dict[str, tuple[dict[str, Any], str]] = {
    "small_h264": ({"width": 320, "height": 180}, ".mp4"),
    # Real pictures: OpenCV's pedestrian camera (768x576, 10 fps), defects put into it.
    "real_vtest_576p10": (
        {"width": 768, "height": 576, "fps": Fraction(10), "picture_file": REAL_VTEST},
        ".mp4",
    ),
    "sd_mpeg2_576i": (
        {
            "width": 720,
            "height": 576,
            "video_codec": "mpeg2video",
            "interlaced": True,
            "audio_codec": "mp2",
            # 4 Mb/s, as SD broadcast runs: libavcodec's default of 200 kb/s leaves
            # MPEG-2 refining a frozen picture for a second.
            "bitrate": 4_000_000,
        },
        ".ts",
    ),
    "hd_720p50_h264": ({"width": 1280, "height": 720, "fps": Fraction(50)}, ".mp4"),
    "hd_1080p2997_h264_44k": (
        {"width": 1920, "height": 1080, "fps": Fraction(30000, 1001), "sample_rate": 44100},
        ".mkv",
    ),
    "hd_720p25_hevc_51": (
        {"width": 1280, "height": 720, "video_codec": "libx265", "channels": 6},
        ".mkv",
    ),
}

# name: (duration, ClipSpec fields) — defects and clean hard negatives.
SCENARIOS: dict[str, tuple[float, dict[str, Any]]] = {
    "black": (
        16.0,
        {
            "noise_levels": 2,
            "defects": [
                Defect("black", 3.0, 3.0 + 3 / 25),
                Defect("black", 6.0, 7.0),
                Defect("black", 10.0, 14.0),
            ],
        },
    ),
    "freeze": (
        16.0,
        {"noise_levels": 3, "defects": [Defect("freeze", 3.0, 6.0), Defect("freeze", 9.0, 14.0)]},
    ),
    "silence": (
        16.0,
        {
            "sound": "speech",
            "defects": [Defect("silence", 2.0, 5.0), Defect("silence", 8.0, 13.0, {"channel": 1})],
        },
    ),
    "clipping": (12.0, {"sound": "music", "defects": [Defect("clipping", 4.0, 7.0)]}),
    "loudness": (
        28.0,
        {"sound": "music", "defects": [Defect("loudness", 8.0, 20.0, {"gain_db": 10})]},
    ),
    "dropped_frames": (
        12.0,
        {
            "defects": [
                Defect("dropped_frames", 2.0, 2.04),
                Defect("dropped_frames", 5.0, 5.2),
                Defect("dropped_frames", 8.0, 8.48),
            ]
        },
    ),
    "losses": (
        16.0,
        {"defects": [Defect("audio_loss", 3.0, 4.5), Defect("video_loss", 9.0, 12.0)]},
    ),
    # Picture defects longer than two keyframe spacings (GOPs are 2 s): what patrol
    # judges on keyframes alone (eval --analysis patrol). Off the keyframes, as a
    # defect falls in the world: patrol dates it to the keyframe after.
    "long_picture_defects": (
        36.0,
        {
            "noise_levels": 2,
            "defects": [
                Defect("black", 4.7, 10.3),
                Defect("freeze", 15.3, 22.6),
                Defect("video_loss", 27.5, 32.5),
            ],
        },
    ),
    # Exactly as long as the detectors' minimum durations, off every frame and window.
    "at_minimum": (
        10.0,
        {"defects": [Defect("freeze", 2.37, 4.37), Defect("silence", 6.13, 8.13)]},
    ),
    "clean_dark_scene": (10.0, {"picture": "dark", "noise_levels": 2}),
    "clean_fades": (12.0, {"noise_levels": 2, "fades": [3.0, 8.0]}),
    "clean_pulldown": (10.0, {"noise_levels": 2, "pulldown": True}),
    "clean_ticker": (10.0, {"picture": "static_ticker", "noise_levels": 2}),
    "clean_small_motion": (10.0, {"picture": "static_small_motion", "noise_levels": 2}),
    "clean_quiet_speech": (10.0, {"sound": "speech", "level_lufs": -40.0}),
    "clean_loud_music": (10.0, {"sound": "music", "level_lufs": -10.0}),
}


def sound_moved(start: float, end: float, offset_ms: float) -> Defect:
    """The sound moved later by ``offset_ms`` over [start, end) (negative: earlier)."""
    return Defect("av_offset", start, end, {"offset_ms": offset_ms})


PATTERN = {"picture": "flash", "sound": "beeps"}
TALKING = {"picture": "talking_face", "sound": "recorded", "sound_file": REAL_SPEECH}
CUTS = {"picture": "cuts", "sound": "impacts"}
# name: (duration, ClipSpec fields) — A/V offsets, on formats with synthetic pictures.
SYNC_SCENARIOS: dict[str, tuple[float, dict[str, Any]]] = {
    "sync_pattern_m200": (20.0, {**PATTERN, "defects": [sound_moved(0, 20, -200)]}),
    "sync_pattern_p37": (20.0, {**PATTERN, "defects": [sound_moved(0, 20, 37)]}),
    "sync_pattern_p300": (20.0, {**PATTERN, "defects": [sound_moved(0, 20, 300)]}),
    "sync_pattern_step": (30.0, {**PATTERN, "defects": [sound_moved(15, 30, -120)]}),
    "sync_talking_0": (20.0, TALKING),
    "sync_talking_m150": (20.0, {**TALKING, "defects": [sound_moved(0, 20, -150)]}),
    "sync_talking_p100": (20.0, {**TALKING, "defects": [sound_moved(0, 20, 100)]}),
    "sync_talking_p250": (20.0, {**TALKING, "defects": [sound_moved(0, 20, 250)]}),
    "sync_talking_step": (40.0, {**TALKING, "defects": [sound_moved(20, 40, 200)]}),
    "sync_cuts_p180": (20.0, {**CUTS, "defects": [sound_moved(0, 20, 180)]}),
    # Speech over a still with no face: no evidence, so no estimate and no alarm.
    "clean_speech_no_face": (
        20.0,
        {"picture": "static_small_motion", "sound": "recorded", "sound_file": REAL_SPEECH},
    ),
}
SYNC_CONTENT = {"flash": "pattern", "talking_face": "talking", "cuts": "events"}

# name: (duration, damages, ClipSpec fields) — on a clean TS of each transport format.
TRANSPORT_SCENARIOS: dict[str, tuple[float, list[Damage], dict[str, Any]]] = {
    "ts_packet_loss": (14.0, [Damage("drop", 3.0, 20), Damage("drop", 9.0, 7)], {}),
    "ts_bit_errors": (14.0, [Damage("corrupt", 5.0, 10), Damage("corrupt", 11.0, 2)], {}),
    # Transport errors that damage no picture: no corruption may be reported.
    "ts_cc_jump_and_tei": (14.0, [Damage("cc_jump", 4.0), Damage("tei", 10.0, 5)], {}),
    "ts_table_gaps": (
        14.0,
        [Damage("pat_gap", 3.0, seconds=0.8), Damage("pmt_gap", 8.0, seconds=1.3)],
        {},
    ),
    # The signal goes away for 1.5 s and comes back: every PID loses packets at once.
    "ts_signal_cut": (14.0, [Damage("cut", 6.0, seconds=1.5)], {}),
    # SCTE-35 cues: a break that ends on time, one whose cue-in comes 4 s late.
    "scte35_breaks": (
        40.0,
        [],
        {
            "defects": [
                Defect("ad_break", 8.0, 18.0),
                Defect("ad_break", 26.0, 32.0, {"overrun_s": 4}),
            ]
        },
    ),
    # The PMT drops the second (French) audio track half-way: logged as a PMT change.
    "pmt_track_loss": (12.0, [], {"defects": [Defect("track_loss", 6.0, 12.0)]}),
    # The same, checked against what the programme must carry (EXPECTED).
    "pmt_track_loss_expected": (12.0, [], {"defects": [Defect("track_loss", 6.0, 12.0)]}),
    "captions_expected_none": (8.0, [], {}),
    # A cue-out whose CRC fails (its cue-in then matches nothing), and one sent late.
    "scte35_damaged_cues": (
        30.0,
        [],
        {
            "defects": [
                Defect("ad_break", 6.0, 12.0, {"crc_error": 1}),
                Defect("ad_break", 18.0, 24.0, {"late": 1}),
            ]
        },
    ),
}
# Scenarios checked with an expect: block (the truth follows: expect_truth).
EXPECTED: dict[str, dict[str, Any]] = {
    "pmt_track_loss_expected": {
        "audio_tracks": 2,
        "languages": ["fra", "eng"],
        "service_name": "News 24",
    },
    "captions_expected_none": {"captions": True},
}
# Captions that stop for 14 s (the captions detector waits 10 s) and come back.
CAPTIONS_STOP = Defect("captions_loss", 8.0, 22.0)
# Plain compression blockiness is not corruption: the same content starved of bits.
LOW_BITRATE = {"small_h264": 60_000, "sd_mpeg2_576i": 800_000, "real_vtest_576p10": 150_000}
# Synthetic pictures in H.264 and SD MPEG-2, and a real camera picture in H.264.
TRANSPORT_FORMATS = ("small_h264", "sd_mpeg2_576i", "real_vtest_576p10")
QUICK_TRANSPORT = ("small_h264",)

QUICK_FORMATS = ("small_h264", "real_vtest_576p10")
# Real music (realmedia.MUSIC) driven into clipping and loud, in AAC at 44.1 kHz and
# in MP2: what a lossy codec does to clipped beats, tabla and bass (full corpus only).
MUSIC_FORMATS: dict[str, tuple[dict[str, Any], str]] = {
    "music_44k_aac": (
        {"width": 320, "height": 240, "fps": Fraction(15), "sample_rate": 44100},
        ".mp4",
    ),
    "music_mp2": (
        {"width": 320, "height": 180, "video_codec": "mpeg2video", "audio_codec": "mp2"},
        ".ts",
    ),
}
MUSIC_SCENARIOS = ("clipping", "loudness")
SYNC_FORMATS = ("small_h264", "sd_mpeg2_576i", "hd_720p50_h264", "hd_1080p2997_h264_44k")
QUICK_SYNC = ("sync_pattern_m200", "sync_pattern_step", "sync_talking_0", "sync_talking_p250")
# The loudness detector's defaults decide what "off target" means in the truth.
TARGET_LUFS = LoudnessConfig().target_lufs or -23.0
SHORT_TERM_TOLERANCE_LU = LoudnessConfig().short_term_tolerance_lu


def media_cache() -> Path:
    return Path(os.environ.get("AVWATCH_MEDIA_CACHE", Path.home() / ".cache" / "avwatch" / "media"))


def recordings(names: dict[str, tuple[str, str]]) -> dict[str, str]:
    """ "real:NAME" to the cached file of each recording in ``names``."""
    return {f"real:{name}": str(fetch(item, media_cache())) for name, item in names.items()}


def cases(quick: bool, real: bool = True) -> list[Case]:
    """(name, spec, suffix, transport damages) for every file of the tuning corpus;
    ``real`` False leaves out the cases that need real recordings."""
    real_files = recordings(TUNING) if real else {}
    out: list[Case] = []
    for fmt in QUICK_FORMATS if quick else FORMATS:
        fields, suffix = FORMATS[fmt]
        scenarios = dict(SCENARIOS)
        if fmt in SYNC_FORMATS:
            scenarios |= {k: v for k, v in SYNC_SCENARIOS.items() if not quick or k in QUICK_SYNC}
        for scenario, (duration, extra) in scenarios.items():
            combined = _with_recordings({**fields, **extra}, real_files)
            if combined is None:
                continue
            spec = at_frame_rate(scenario, ClipSpec(duration_s=duration, **combined))
            out.append((f"{fmt}__{scenario}", spec, suffix, []))
        transport = _with_recordings(fields, real_files)
        if fmt in (QUICK_TRANSPORT if quick else TRANSPORT_FORMATS) and transport is not None:
            base = ClipSpec(**{**transport, "noise_levels": 2})
            for scenario, (duration, damages, extra) in TRANSPORT_SCENARIOS.items():
                spec = replace(base, duration_s=duration, **extra)
                out.append((f"{fmt}__{scenario}", spec, ".ts", damages))
            starved = replace(base, duration_s=10.0, bitrate=LOW_BITRATE[fmt])
            out.append((f"{fmt}__clean_low_bitrate_ts", starved, ".ts", []))
            if base.video_codec == "libx264":  # caption data is written as H.264 SEI
                captions = replace(base, duration_s=30.0, captions=True, defects=[CAPTIONS_STOP])
                out.append((f"{fmt}__captions_stop", captions, ".ts", []))
    if not quick:
        out += music_cases(real_files)
    return out


def music_cases(real_files: dict[str, str]) -> list[Case]:
    """Each real music recording driven into clipping and loud, in each music format."""
    out: list[Case] = []
    for fmt, (fields, suffix) in MUSIC_FORMATS.items():
        for music in MUSIC:
            if (sound_file := real_files.get(f"real:{music}")) is None:
                continue
            for scenario in MUSIC_SCENARIOS:
                duration, extra = SCENARIOS[scenario]
                spec = ClipSpec(
                    duration_s=duration,
                    **fields,
                    sound="recorded",
                    sound_file=sound_file,
                    defects=extra["defects"],
                )
                out.append((f"{fmt}_{music}__{scenario}", spec, suffix, []))
    return out


def at_frame_rate(scenario: str, spec: ClipSpec) -> ClipSpec:
    """The scenario's black flash as 3 frames at this format's frame rate (its
    3.0-3.12 s are 3 frames at 25 fps, 2 at 15)."""
    if scenario == "black" and spec.fps != 25:
        flash = Defect("black", 3.0, 3.0 + 3 / float(spec.fps))
        return replace(spec, defects=[flash, *spec.defects[1:]])
    return spec


def _with_recordings(fields: dict[str, Any], real_files: dict[str, str]) -> dict[str, Any] | None:
    """``fields`` with the real recordings it names resolved to their files; None when
    one of them cannot be had."""
    named = {k: v for k in ("picture_file", "sound_file") if (v := fields.get(k)) is not None}
    if any(v not in real_files for v in named.values()):
        return None
    return fields | {k: real_files[v] for k, v in named.items()}


def sync_truth(spec: ClipSpec) -> list[TruthEvent]:
    """``av_sync`` alarms the truth calls for: spans whose offset is beyond the
    detector's default limits (BT.1359)."""
    limits = AvSyncConfig()
    return [
        {"type": "av_sync", "start": span["start"], "end": span["end"], "details": dict(span)}
        for span in offset_truth(spec)
        if span["offset_ms"] > limits.max_audio_late_ms
        or span["offset_ms"] < -limits.max_audio_early_ms
    ]


def expect_truth(spec: ClipSpec, expect: dict[str, Any]) -> list[TruthEvent]:
    """What a file checked with ``expect`` must raise. The corpus's clips carry one
    service (FFmpeg's muxer names it Service01) and one audio track without a
    language; a ``track_loss`` clip carries English and French until the loss, then
    English alone."""
    end = spec.duration_s
    loss = next((float(d.start) for d in spec.defects if d.type == "track_loss"), None)
    # (from, to, audio languages) of each stretch the PMT stays the same
    phases = [(0.0, end, ["und"])] if loss is None else [(0.0, loss, ["eng", "fra"])]
    if loss is not None:
        phases.append((loss, end, ["eng"]))
    checks: dict[str, Callable[[list[str]], bool]] = {}
    if "audio_tracks" in expect:
        checks["track_missing"] = lambda langs: len(langs) < expect["audio_tracks"]
    if "languages" in expect:
        wanted = sorted(code.lower() for code in expect["languages"])
        checks["language_changed"] = lambda langs: sorted(langs) != wanted
    out: list[TruthEvent] = []
    for type_, wrong in checks.items():
        spans = [(a, b) for a, b, langs in phases if wrong(langs)]
        if spans:  # the phases are adjacent: one incident from the first to the last
            out.append({"type": type_, "start": spans[0][0], "end": spans[-1][1], "details": {}})
    if expect.get("captions") and not spec.captions:
        out.append({"type": "captions_missing", "start": 0.0, "end": end, "details": {}})
    if "service_name" in expect and expect["service_name"] != "Service01":
        out.append({"type": "service_changed", "start": 0.0, "end": end, "details": {}})
    return out


def programme_truth(spec: ClipSpec) -> list[TruthEvent]:
    """Truth that follows from the programme as a whole: a clip mixed far from the EBU
    target is off target from start to end (as the loudness detector's defaults judge)."""
    if spec.audio_codec and abs(spec.level_lufs - TARGET_LUFS) > SHORT_TERM_TOLERANCE_LU:
        return [{"type": "loudness", "start": 0.0, "end": spec.duration_s, "details": {}}]
    return []


def build(
    directory: Path, quick: bool = False, corpus_set: str = "tuning", resume: bool = False
) -> list[Path]:
    """Write every case of one corpus set into ``directory``; returns the media paths.
    ``resume``: keep a case already there with the same spec (a build of an hour that
    was stopped goes on where it was); its truth is written last, so it marks a case
    finished.

    ``tuning`` is the corpus the detectors are tuned on; ``heldout`` and ``clean``
    (avwatch.lab.corpus_sets) are only reported. Real recordings come from Debian
    packages; where they cannot be had the tuning set is built without them and
    the reason is logged, and the other two sets, made of them, fail.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if corpus_set in ("heldout", "clean"):
        from avwatch.lab.corpus_sets import clean_cases, heldout_cases

        real = recordings(TUNING | HELD_OUT)
        all_cases = heldout_cases(real) if corpus_set == "heldout" else clean_cases(real)
    elif corpus_set == "tuning":
        try:
            all_cases = cases(quick)
        except AvwatchError as exc:
            log.warning("corpus without real recordings: %s", exc)
            all_cases = cases(quick, real=False)
    else:
        raise AvwatchError(f"corpus set {corpus_set!r}: one of {', '.join(CORPUS_SETS)}")
    written = []
    for name, spec, suffix, damages in all_cases:
        path = directory / f"{name}{suffix}"
        description = {k: str(v) for k, v in asdict(spec).items() if k != "defects"}
        truth_path = directory / f"{name}.truth.json"
        if resume and _finished(path, truth_path, description):
            written.append(path)
            continue
        if damages:
            truth = _damaged_clip(path, spec, damages)
        else:
            truth = make_clip(path, spec)
            if suffix == ".ts":
                # The muxer's own PCR and table gaps (no video packets while frames are
                # skipped, and it repeats PAT/PMT by the video's clock).
                truth += transport_truth(path, MERGE_GAP_S)
        expect = EXPECTED.get(name.split("__", 1)[1], {})
        truth += programme_truth(spec) + sync_truth(spec) + expect_truth(spec, expect)
        truth = without_repeats(truth)
        record = {
            "source": path.name,
            "spec": description,
            "events": sorted(truth, key=lambda e: (e["start"], e["type"])),
            "av_offsets": offset_truth(spec),
            "expect": expect,  # the eval checks this file with it
            "sync_content": _sync_content(spec),
        }
        truth_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


def _finished(path: Path, truth_path: Path, description: dict[str, str]) -> bool:
    """Whether a case was written before, from this very spec."""
    try:
        record = json.loads(truth_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return path.is_file() and isinstance(record, dict) and record.get("spec") == description


def _sync_content(spec: ClipSpec) -> str:
    if spec.picture_file is not None:  # a recording: with its own sound, or another's
        return "film" if spec.sound_file == spec.picture_file else "unrelated"
    return SYNC_CONTENT.get(spec.picture, "other")


def _damaged_clip(path: Path, spec: ClipSpec, damages: list[Damage]) -> list[TruthEvent]:
    """A clean TS with ``damages`` applied to its bytes; returns the measured truth."""
    clean = path.with_name(f".{path.stem}.clean.ts")
    try:
        truth = make_clip(clean, spec)
        truth += damage_ts(clean, path, damages)
        truth += picture_truth(clean, path, DroppedFramesConfig().max_gap_s)
        truth += audio_truth(clean, path, LossConfig().min_gap_s)
        return truth + transport_truth(path, MERGE_GAP_S)
    finally:
        clean.unlink(missing_ok=True)
