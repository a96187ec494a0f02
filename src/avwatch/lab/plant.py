"""The demo's plant: channels made from real recordings in colour, in the formats a
broadcast plant carries, each with defects on a schedule an operator can watch.

The recordings come from Debian packages (lab/realmedia.py); each channel is a 30 s
loop made once by the synth (exact defects, known places) and cached. Where the
recordings cannot be had, the demo falls back to its synthetic channels.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

from avwatch.lab.corpus import FORMATS, media_cache
from avwatch.lab.realmedia import HELD_OUT, TUNING, fetch
from avwatch.lab.scratch import partial_path
from avwatch.lab.synth import ClipSpec, Defect, make_clip

__all__ = ["PLANT", "plant_clips"]

LOOP_S = 30.0

# name: (title, ClipSpec fields; "real:NAME" is a recording of realmedia).
PLANT: dict[str, tuple[str, dict[str, Any]]] = {
    "news": (
        "News HD · H.264 720p25 AAC",
        {
            "width": 1280,
            "height": 720,
            "bitrate": 5_000_000,
            "picture_file": "real:vtest",
            "sound_file": "real:speech",
            "defects": [Defect("black", 5.0, 8.0), Defect("silence", 15.0, 19.0)],
        },
    ),
    "film": (
        "Film SD · MPEG-2 576i MP2",
        {
            **FORMATS["sd_mpeg2_576i"][0],
            "picture_file": "real:film",
            "sound_file": "real:film",
            "defects": [Defect("freeze", 8.0, 12.0), Defect("clipping", 20.0, 23.0)],
        },
    ),
    "city": (
        "City · HEVC 720p50 AAC",
        {
            "width": 1280,
            "height": 720,
            "fps": Fraction(50),
            "video_codec": "libx265",
            "picture_file": "real:city",
            "sound_file": "real:song",
            "defects": [Defect("black", 10.0, 12.5), Defect("silence", 20.0, 24.0, {"channel": 1})],
        },
    ),
    "drama": (
        "Drama 5.1 · H.264 720p AC-3 5.1",
        {
            "width": 1280,
            "height": 720,
            "audio_codec": "ac3",
            "channels": 6,
            "bitrate": 5_000_000,
            "picture_file": "real:tree",
            "sound_file": "real:tune",
            "defects": [
                Defect("silence", 4.0, 10.0, {"channel": 0}),
                Defect("loudness", 16.0, 28.0, {"gain_db": 10.0}),
            ],
        },
    ),
    "talk": (
        "Talk · H.264 540p 44.1 kHz",
        {
            "width": 960,
            "height": 540,
            "bitrate": 5_000_000,
            "sample_rate": 44100,
            "picture_file": "real:city",
            "sound_file": "real:reading",
            # (Lip sync is shown by the line-up: a street with a reading has no mouth.)
            "defects": [
                Defect("video_loss", 6.0, 9.0),
                Defect("loudness", 15.0, 27.0, {"gain_db": -14.0}),
            ],
        },
    ),
    "archive": (
        "Archive · HEVC 1080p25 AC-3",
        {
            "width": 1920,
            "height": 1080,
            "video_codec": "libx265",
            "audio_codec": "ac3",
            "picture_file": "real:film",
            "sound_file": "real:film",
            "defects": [Defect("dropped_frames", 9.0, 9.4), Defect("black", 18.0, 21.0)],
        },
    ),
}


def plant_clips(directory: Path) -> dict[str, tuple[str, Path]]:
    """Each channel's title and clip, made on first use.

    Raises:
        AvwatchError: a recording cannot be had (no apt-get, no network to Debian).
    """
    directory.mkdir(parents=True, exist_ok=True)
    recordings = {**TUNING, **HELD_OUT}
    clips = {}
    for name, (title, fields) in PLANT.items():
        path = directory / f"plant-{name}.ts"
        if not path.exists():
            files = {k: v for k, v in fields.items() if k in ("picture_file", "sound_file")}
            real = {
                k: str(fetch(recordings[v.removeprefix("real:")], media_cache()))
                for k, v in files.items()
            }
            spec = ClipSpec(duration_s=LOOP_S, colour=True, sound="recorded", **{**fields, **real})
            partial = partial_path(path)
            make_clip(partial, spec)
            partial.rename(path)
        clips[name] = (title, path)
    return clips
