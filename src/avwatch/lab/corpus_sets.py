"""The corpus beyond its tuning half: a held-out set and a clean hour.

``heldout``: the corpus's defects, exact as ever, put into recordings nobody here
tuned on (``realmedia.HELD_OUT``: a film excerpt with its own sound, a street
filmed from a car, a tree in the wind, a man reading, songs), in formats the
tuning half has less of: SD MPEG-2 interlaced in TS, H.264 at 15 fps with
44.1 kHz sound, HEVC with 5.1 AC-3, 720p50 in TS. The film's own sound, moved
by known offsets, is the lip-sync case on real dialogue. Report it; never
tune on it.

``clean``: over an hour with no defect put in, for false alarms per hour: real
recordings from both halves in many formats, and the hard negatives a
detector meets every day (3:2 pulldown, tickers over stills, dark scenes,
quiet passages, music beds, centre-only 5.1 dialogue, speech over stills,
cuts, fast grainy motion, dips through black). Anything found there is a
false alarm, but what its truth holds (a muxer's own PCR gaps).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from avwatch.lab.corpus import (
    FORMATS,
    SCENARIOS,
    TRANSPORT_SCENARIOS,
    Case,
    at_frame_rate,
    sound_moved,
)
from avwatch.lab.damage import Damage
from avwatch.lab.synth import ClipSpec

__all__ = ["CLEAN", "HELD_OUT_FORMATS", "clean_cases", "heldout_cases"]

SD_MPEG2 = FORMATS["sd_mpeg2_576i"][0]
HEVC_51 = {"video_codec": "libx265", "channels": 6, "audio_codec": "ac3"}
H264_STEREO = {"video_codec": "libx264", "channels": 2, "audio_codec": "aac"}

# name: (ClipSpec fields, suffix); "real:NAME" names a recording of realmedia.HELD_OUT.
HELD_OUT_FORMATS: dict[str, tuple[dict[str, Any], str]] = {
    "city_sd_mpeg2_576i": (
        {
            **SD_MPEG2,
            "picture_file": "real:city",
            "sound": "recorded",
            "sound_file": "real:reading",
        },
        ".ts",
    ),
    "tree_h264_240p15_44k": (
        {
            "width": 320,
            "height": 240,
            "fps": Fraction(15),
            "sample_rate": 44100,
            "picture_file": "real:tree",
            "sound": "recorded",
            "sound_file": "real:song",
        },
        ".mp4",
    ),
    "film_hevc_528p_51": (
        {
            **HEVC_51,
            "width": 720,
            "height": 528,
            "fps": Fraction(24000, 1001),
            "picture_file": "real:film",
            "sound": "recorded",
            "sound_file": "real:film",
        },
        ".mkv",
    ),
    "city_h264_720p50": (
        {
            "width": 1280,
            "height": 720,
            "fps": Fraction(50),
            "picture_file": "real:city",
            "sound": "recorded",
            "sound_file": "real:tune",
        },
        ".ts",
    ),
}
# The picture and sound are the recordings': a scenario brings only its defects.
HELD_OUT_SCENARIOS = (
    *("black", "freeze", "silence", "clipping", "loudness", "dropped_frames"),
    *("losses", "long_picture_defects", "at_minimum"),
)
FILM_SYNC = {
    f"film_sync_{'p' if ms > 0 else 'm'}{abs(ms)}": (30.0, [sound_moved(0, 30, ms)])
    for ms in (-250, -120, 0, 120, 200, 300)
}
FILM = ("film_hevc_528p_51",)
HELD_OUT_TRANSPORT = ("ts_packet_loss", "ts_bit_errors", "ts_signal_cut")
# The signal away for just over a second (1.1 s) in SD MPEG-2, and packet loss in HEVC.
EXTRA_TRANSPORT: dict[str, tuple[str, float, list[Damage]]] = {
    "ts_signal_cut_1s1": ("city_sd_mpeg2_576i", 14.0, [Damage("cut", 6.0, seconds=1.1)]),
    "ts_packet_loss_hevc": (
        "film_hevc_528p_51",
        14.0,
        [Damage("drop", 3.0, 20), Damage("drop", 9.0, 7)],
    ),
}
TRANSPORT_BASES = ("city_sd_mpeg2_576i", "city_h264_720p50")


def heldout_cases(real: dict[str, str]) -> list[Case]:
    """The held-out set, with ``real`` resolving "real:NAME" to files."""
    out: list[Case] = []
    for fmt, (fields, suffix) in HELD_OUT_FORMATS.items():
        base = _resolved(fields, real)
        for scenario in HELD_OUT_SCENARIOS:
            duration, extra = SCENARIOS[scenario]
            spec = ClipSpec(duration_s=duration, **base, defects=extra.get("defects", []))
            spec = at_frame_rate(scenario, spec)
            out.append((f"heldout_{fmt}__{scenario}", spec, suffix, []))
        if fmt in FILM:
            for scenario, (duration, defects) in FILM_SYNC.items():
                spec = ClipSpec(duration_s=duration, **base, defects=defects)
                out.append((f"heldout_{fmt}__{scenario}", spec, suffix, []))
        if fmt in TRANSPORT_BASES:
            for scenario in HELD_OUT_TRANSPORT:
                duration, damages, _ = TRANSPORT_SCENARIOS[scenario]
                spec = ClipSpec(duration_s=duration, **base)
                out.append((f"heldout_{fmt}__{scenario}", spec, ".ts", damages))
    for scenario, (fmt, duration, damages) in EXTRA_TRANSPORT.items():
        spec = ClipSpec(duration_s=duration, **_resolved(HELD_OUT_FORMATS[fmt][0], real))
        out.append((f"heldout_{fmt}__{scenario}", spec, ".ts", damages))
    return out


SPEECH = {"sound": "recorded", "sound_file": "real:speech"}
# name: (duration, ClipSpec fields, suffix) — no defect in any of them.
CLEAN: dict[str, tuple[float, dict[str, Any], str]] = {
    # Real recordings, both halves.
    "film_h264_528p": (90.0, HELD_OUT_FORMATS["film_hevc_528p_51"][0] | H264_STEREO, ".mp4"),
    "film_hevc_51_centre": (
        90.0,
        HELD_OUT_FORMATS["film_hevc_528p_51"][0] | {"centre_only": True},
        ".mkv",
    ),
    "city_sd_mpeg2_reading": (180.0, HELD_OUT_FORMATS["city_sd_mpeg2_576i"][0], ".ts"),
    "city_720p50_tune": (180.0, HELD_OUT_FORMATS["city_h264_720p50"][0], ".ts"),
    "tree_song_44k": (240.0, HELD_OUT_FORMATS["tree_h264_240p15_44k"][0], ".mp4"),
    "tree_hello": (
        120.0,
        {
            "width": 320,
            "height": 240,
            "fps": Fraction(15),
            "picture_file": "real:tree",
            "sound": "recorded",
            "sound_file": "real:hello",
        },
        ".mkv",
    ),
    "street_speech": (
        240.0,
        {"width": 768, "height": 576, "fps": Fraction(10), "picture_file": "real:vtest", **SPEECH},
        ".mp4",
    ),
    "street_song_1080p2997": (
        90.0,
        {
            "width": 1920,
            "height": 1080,
            "fps": Fraction(30000, 1001),
            "sample_rate": 44100,
            "picture_file": "real:vtest",
            "sound": "recorded",
            "sound_file": "real:song",
        },
        ".mkv",
    ),
    # Hard negatives.
    "pulldown_music": (
        240.0,
        {"fps": Fraction(30000, 1001), "pulldown": True, "noise_levels": 2, "sound": "music"},
        ".mp4",
    ),
    "pulldown_talking": (
        240.0,
        {"fps": Fraction(30000, 1001), "pulldown": True, "picture": "talking_face", **SPEECH},
        ".mp4",
    ),
    "ticker_over_still": (240.0, {"picture": "static_ticker", "noise_levels": 2, **SPEECH}, ".ts"),
    "dark_scene_music": (180.0, {"picture": "dark", "noise_levels": 2, "sound": "music"}, ".mp4"),
    # A reading's quiet passages, the programme at target: mixed 5 LU low as a whole it
    # would be off R128's +-1 LU, a loudness defect and not a clean negative.
    "quiet_passages": (
        180.0,
        {
            "picture": "static_small_motion",
            "noise_levels": 2,
            "sound": "recorded",
            "sound_file": "real:reading",
        },
        ".mp4",
    ),
    "music_bed_sd": (
        240.0,
        {**SD_MPEG2, "picture": "static_small_motion", "noise_levels": 2, "sound": "music"},
        ".ts",
    ),
    "centre_dialogue_51": (
        240.0,
        {
            **HEVC_51,
            "width": 640,
            "height": 360,
            "picture": "talking_face",
            "centre_only": True,
            **SPEECH,
        },
        ".mkv",
    ),
    "speech_over_still": (
        180.0,
        {"picture": "static_small_motion", "noise_levels": 2, "sound": "speech"},
        ".mp4",
    ),
    "cuts_impacts_720p50": (
        180.0,
        {"width": 1280, "height": 720, "fps": Fraction(50), "picture": "cuts", "sound": "impacts"},
        ".ts",
    ),
    "fast_grainy_motion": (180.0, {"noise_levels": 6, "sound": "music"}, ".mp4"),
    "dips_through_black": (
        180.0,
        {"noise_levels": 2, "sound": "music", "fades": [float(t) for t in range(10, 180, 20)]},
        ".mp4",
    ),
    "lineup_pattern": (120.0, {"picture": "flash", "sound": "beeps"}, ".mp4"),
}


def clean_cases(real: dict[str, str]) -> list[Case]:
    """The clean hour, with ``real`` resolving "real:NAME" to files."""
    return [
        (f"clean__{name}", ClipSpec(duration_s=duration, **_resolved(fields, real)), suffix, [])
        for name, (duration, fields, suffix) in CLEAN.items()
    ]


def _resolved(fields: dict[str, Any], real: dict[str, str]) -> dict[str, Any]:
    return {
        k: real[v] if isinstance(v, str) and v.startswith("real:") else v for k, v in fields.items()
    }
