"""What a synthetic clip is: its format, picture, sound and defects (``ClipSpec``),
and the true A/V offset it carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

from avwatch.lab.truth import OffsetSpan

Picture = Literal[
    "moving", "dark", "static_ticker", "static_small_motion", "talking_face", "flash", "cuts"
]

Sound = Literal["tone", "music", "speech", "recorded", "beeps", "impacts", "none"]

DEFECT_TYPES = (
    "black",
    "freeze",
    "dropped_frames",
    "video_loss",
    "silence",
    "clipping",
    "loudness",
    "audio_loss",
    "av_offset",
    "ad_break",
    "captions_loss",
    "track_loss",
)


@dataclass(frozen=True)
class Defect:
    """One defect over [start, end) media seconds.

    ``params``: silence ``channel`` (index; absent = all), clipping ``gain_db``
    (drive into the clipper, default 12), loudness ``gain_db`` (default +12),
    av_offset ``offset_ms`` (the sound moved later by this much; negative = earlier),
    ad_break (SCTE-35 cues around [start, end), TS only) ``overrun_s`` (the cue-in
    this much late), ``crc_error=1`` (the cue-out's CRC spoilt), ``late=1`` (the
    cue-out sent after its splice time), captions_loss (no caption data in the
    pictures of [start, end) of a clip with ``captions``), track_loss (a second,
    French audio track that the PMT drops at start; TS only).
    """

    type: str
    start: float
    end: float
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ClipSpec:
    duration_s: float = 10.0
    width: int = 640
    height: int = 360
    fps: Fraction = Fraction(25)
    video_codec: str | None = "libx264"
    picture: Picture = "moving"
    picture_file: str | None = None
    """A real recording whose pictures replace the synthetic ones (its frame rate is ignored)."""
    colour: bool = False
    """Keep the recording's colour (``picture_file`` only; drawn pictures are grey)."""
    sound_file: str | None = None
    """A real recording for ``sound="recorded"`` (resampled, looped to the clip's length)."""
    noise_levels: float = 0.0
    """Grain (std, 8-bit levels): makes the stream as costly to decode as real content."""
    interlaced: bool = False
    bitrate: int | None = None
    preset: str = "ultrafast"
    """x264/x265 preset. "ultrafast" (the default: clips made quickly) writes no B-frames,
    no CABAC and no deblocking; "veryfast" writes all three, as broadcast encoders do."""
    audio_codec: str | None = "aac"
    sample_rate: int = 48000
    channels: int = 2
    sound: Sound = "music"
    level_lufs: float = -23.0
    defects: list[Defect] = field(default_factory=list)
    seed: int = 1
    fades: list[float] = field(default_factory=list)
    """Times of a dip through black: 0.5 s down to 30%, one black frame, 0.5 s up (not a
    defect: a black flash is three frames or more)."""
    captions: bool = False
    """CEA-608 caption data in every picture (H.264 only), but in ``captions_loss`` spans."""
    centre_only: bool = False
    """5.1 with the sound in the centre alone, as drama mixes carry dialogue (not a defect)."""
    pulldown: bool = False
    """Every fifth frame repeats the one before, as 24 fps film shown at 30 (not a defect)."""


def parse_defect(text: str) -> Defect:
    """``TYPE:START-END[:key=value,...]`` e.g. ``black:3-4`` or ``silence:5-8:channel=1``."""
    try:
        kind, span, *rest = text.split(":")
        start, end = (float(x) for x in span.split("-"))
        params: dict[str, Any] = {}
        for item in rest[0].split(",") if rest else []:
            key, value = item.split("=")
            params[key] = float(value) if "." in value else int(value)
    except ValueError as exc:
        raise ValueError(f"bad defect {text!r}: expected TYPE:START-END[:key=value,...]") from exc
    if kind not in DEFECT_TYPES:
        raise ValueError(f"bad defect {text!r}: type must be one of {', '.join(DEFECT_TYPES)}")
    if not 0 <= start < end:
        raise ValueError(f"bad defect {text!r}: need 0 <= START < END")
    return Defect(kind, start, end, params)


def offset_truth(spec: ClipSpec) -> list[OffsetSpan]:
    """The true A/V offset over the clip, as [start, end) spans with ``offset_ms``
    (none for a clip without both pictures and sound)."""
    if not (spec.video_codec and spec.audio_codec):
        return []
    spans = sorted(
        (d.start, min(d.end, spec.duration_s), float(d.params.get("offset_ms", 0)))
        for d in spec.defects
        if d.type == "av_offset"
    )
    out: list[OffsetSpan] = []
    at = 0.0
    for start, end, offset in spans:
        if start > at:
            out.append({"start": at, "end": start, "offset_ms": 0.0})
        out.append({"start": start, "end": end, "offset_ms": offset})
        at = end
    if at < spec.duration_s:
        out.append({"start": at, "end": spec.duration_s, "offset_ms": 0.0})
    return out
