"""``avwatch synth``: a test clip with defects at known places, and its truth."""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path

from avwatch.cli.common import EXIT_OK, Commands
from avwatch.errors import ConfigError

# avwatch.lab.synth's Picture and Sound (importing it here would cost every command a second).
SYNTH_PICTURES = (
    "moving",
    "dark",
    "static_ticker",
    "static_small_motion",
    "talking_face",
    "flash",
    "cuts",
)
SYNTH_SOUNDS = ("tone", "music", "speech", "recorded", "beeps", "impacts", "none")


def register(sub: Commands) -> None:
    s = sub.add_parser("synth", help="make a test clip with defects at known places")
    s.add_argument("output", help="output file; the container follows the extension")
    s.add_argument("--duration", type=float, default=10.0, metavar="S")
    s.add_argument("--size", default="640x360", metavar="WxH")
    s.add_argument("--fps", default="25", help="frame rate, e.g. 25 or 30000/1001")
    s.add_argument("--video-codec", default="libx264")
    s.add_argument("--audio-codec", default="aac")
    s.add_argument("--picture", default="moving", choices=SYNTH_PICTURES)
    s.add_argument("--sound", default="music", choices=SYNTH_SOUNDS)
    s.add_argument("--sound-file", metavar="FILE", help="the recording for --sound recorded")
    s.add_argument("--noise", type=float, default=0.0, metavar="LEVELS", help="picture grain")
    s.add_argument("--interlaced", action="store_true")
    s.add_argument(
        "--captions", action="store_true", help="CEA-608 caption data (H.264 in .ts only)"
    )
    s.add_argument(
        "--defect",
        action="append",
        default=[],
        metavar="TYPE:START-END[:k=v]",
        help="e.g. black:3-4, silence:5-8:channel=1 (repeatable)",
    )
    s.add_argument("--truth", metavar="FILE", help="write the truth events as JSON")
    s.set_defaults(run=run)


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"size {text!r}: expected WxH, e.g. 640x360")
    return int(parts[0]), int(parts[1])


def _rate(text: str) -> Fraction:
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(
            f"frame rate {text!r}: expected a number such as 25 or 30000/1001"
        ) from None


def run(args: argparse.Namespace) -> int:
    from avwatch.lab.synth import ClipSpec, make_clip, offset_truth, parse_defect

    if (args.sound == "recorded") != (args.sound_file is not None):
        raise ConfigError("--sound recorded and --sound-file go together")
    try:
        width, height = _size(args.size)
        spec = ClipSpec(
            duration_s=args.duration,
            width=width,
            height=height,
            fps=_rate(args.fps),
            video_codec=args.video_codec or None,
            audio_codec=args.audio_codec or None,
            picture=args.picture,
            sound=args.sound,
            sound_file=args.sound_file,
            noise_levels=args.noise,
            interlaced=args.interlaced,
            captions=args.captions,
            defects=[parse_defect(d) for d in args.defect],
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    truth = make_clip(args.output, spec)  # a clip it cannot make is refused before writing
    if args.truth:
        record = {"events": truth, "av_offsets": offset_truth(spec)}
        Path(args.truth).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output} ({args.duration:g} s, {len(spec.defects)} defects)")
    return EXIT_OK
