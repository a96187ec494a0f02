"""Synthetic clips with defects at exact, known places — the ground truth for tests,
the demo and the corpus.

Defects are applied to the raw pictures and samples before encoding, so the
truth is exact by construction. Pictures are made as luma planes (yuv420p with
neutral chroma); sound is normalised to the target loudness with avwatch's own
BS.1770 meter before the defects are applied.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, cast

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

from avwatch.detectors.loudness.meter import LoudnessMeter
from avwatch.errors import ConfigError, reason
from avwatch.lab.truth import OffsetSpan, TruthEvent

__all__ = ["ClipSpec", "Defect", "make_clip", "offset_truth", "parse_defect"]

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
)


@dataclass(frozen=True)
class Defect:
    """One defect over [start, end) media seconds.

    ``params``: silence ``channel`` (index; absent = all), clipping ``gain_db``
    (drive into the clipper, default 12), loudness ``gain_db`` (default +12),
    av_offset ``offset_ms`` (the sound moved later by this much; negative = earlier).
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
    sound_file: str | None = None
    """A real recording for ``sound="recorded"`` (resampled, looped to the clip's length)."""
    noise_levels: float = 0.0
    """Grain (std, 8-bit levels): makes the stream as costly to decode as real content."""
    interlaced: bool = False
    bitrate: int | None = None
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


# -- pictures ------------------------------------------------------------------------
def _recorded(spec: ClipSpec) -> Iterator[npt.NDArray[np.uint8]]:
    """Luma planes of a real recording at the clip's size, frame after frame, looped."""
    assert spec.picture_file is not None
    count = math.ceil(spec.duration_s * float(spec.fps))
    while count:
        with av.open(spec.picture_file) as source:
            for frame in source.decode(video=0):
                grey = frame.reformat(width=spec.width, height=spec.height, format="gray")
                # gray is full range; the clip is limited range like broadcast video.
                full = grey.to_ndarray().astype(np.float32)
                yield (16 + full * (219 / 255)).round().astype(np.uint8)
                count -= 1
                if not count:
                    return


FLASH_FRAMES = 2  # a line-up flash, and its beep, last two frames


def _event_frames(spec: ClipSpec, kind: Literal["flash", "cuts"]) -> list[int]:
    """Frames where an audio-visual event starts: a flash every second from 0.5 s (a
    line-up pattern), or a cut at irregular times (0.6 to 2.5 s apart)."""
    fps = float(spec.fps)
    if kind == "flash":
        times = np.arange(0.5, spec.duration_s - 0.1, 1.0)
    else:
        gaps = np.random.default_rng(spec.seed + 7).uniform(0.6, 2.5, int(spec.duration_s) + 1)
        times = np.cumsum(gaps)
        times = times[times < spec.duration_s - 0.1]
    return [round(float(t) * fps) for t in times]


def _frame_envelope(spec: ClipSpec, pcm: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """RMS of the sound over each frame's display time, 0-1 (1 = its loud syllables)."""
    power = np.square(pcm.astype(np.float64)).mean(axis=0)
    fps = float(spec.fps)
    count = math.ceil(spec.duration_s * fps)
    edges = np.minimum(
        (np.arange(count + 1) / fps * spec.sample_rate).round().astype(int), len(power)
    )
    sums = np.concatenate([[0.0], np.cumsum(power)])
    rms = np.sqrt((sums[edges[1:]] - sums[edges[:-1]]) / np.maximum(np.diff(edges), 1))
    top = np.percentile(rms, 95) or 1.0
    return np.asarray(np.clip(rms / top, 0.0, 1.0))


def _talking_face(
    spec: ClipSpec, envelope: npt.NDArray[np.float64]
) -> Iterator[npt.NDArray[np.float32]]:
    """A drawn presenter whose mouth opens with the sound shown with each frame, so
    the true A/V offset is exact; the head sways, the eyes blink and the background
    drifts, motion that has nothing to do with the sound."""
    h, w = spec.height, spec.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    fps = float(spec.fps)
    # A graphic in the corner that jumps at random moments: motion with no sound of its own.
    rng = np.random.default_rng(spec.seed + 11)
    jumps = set(np.cumsum(rng.integers(3, 20, len(envelope))).tolist())
    gx, gy = 0, 0
    for i, opening in enumerate(envelope):
        t = i / fps
        img = 70 + 20 * np.sin(xx / (w / 12) + t * 0.8) + 10 * np.cos(yy / (h / 5) - t * 0.5)
        if i in jumps:
            gx, gy = int(rng.integers(0, w // 5)), int(rng.integers(0, h // 3))
        img[gy : gy + h // 6, gx : gx + w // 8] = 220
        cx = w / 2 + 0.04 * w * math.sin(t * 0.7)
        cy = h / 2 + 0.02 * h * math.sin(t * 0.43)
        fh, fw = 0.26 * h, 0.2 * h
        dx, dy = (xx - cx) / fw, (yy - cy) / fh
        face = dx**2 + dy**2 <= 1
        img = np.where(face, 178 - 25 * np.clip(dx**2, 0, 1), img)
        blink = (t % 3.7) < 3 / fps
        for side in (-1, 1):
            ex, ey = dx - side * 0.38, dy + 0.22
            eye = (ex / 0.2) ** 2 + (ey / (0.01 if blink else 0.08)) ** 2 <= 1
            img[eye] = 40
            brow = (np.abs(dy + 0.38) < 0.035) & (np.abs(dx - side * 0.38) < 0.25)
            img[brow] = 60
        img[(np.abs(dx) < 0.06) & (dy > -0.15) & (dy < 0.2)] = 195
        for side in (-1, 1):
            img[((dx - side * 0.1) / 0.05) ** 2 + ((dy - 0.22) / 0.03) ** 2 <= 1] = 90
        mouth_h = 0.02 + 0.12 * float(opening)
        img[(dx / 0.32) ** 2 + ((dy - 0.5) / mouth_h) ** 2 <= 1] = 35
        yield img


def _pictures(spec: ClipSpec, pcm: npt.NDArray[np.float32]) -> Iterator[npt.NDArray[np.uint8]]:
    """Limited-range luma planes, one per frame (``pcm``: the clip's sound before any
    defect, which a talking face's mouth follows), with the clip's grain."""
    if spec.picture_file is not None:
        yield from _recorded(spec)
        return
    rng = np.random.default_rng(spec.seed)
    if spec.picture == "talking_face":
        drawn = _talking_face(spec, _frame_envelope(spec, pcm))
    else:
        drawn = _drawn(spec, rng)
    for img in drawn:
        if spec.noise_levels:
            img = img + rng.normal(0, spec.noise_levels, img.shape).astype(np.float32)
        yield np.clip(img, 16, 235).astype(np.uint8)


def _drawn(spec: ClipSpec, rng: np.random.Generator) -> Iterator[npt.NDArray[np.float32]]:
    """The synthetic pictures other than the talking face, before grain (``rng`` gives
    the texture of the still ones)."""
    h, w = spec.height, spec.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    texture = rng.integers(0, 60, size=(h // 8 + 1, w // 8 + 1)).repeat(8, 0).repeat(8, 1)[:h, :w]
    static = (60 + 0.3 * xx / w * 255 * 0.5 + texture).astype(np.float32)
    fps = float(spec.fps)
    flashes = {i + k for i in _event_frames(spec, "flash") for k in range(FLASH_FRAMES)}
    cuts = _event_frames(spec, "cuts")
    for i in range(math.ceil(spec.duration_s * fps)):
        t = i / fps
        if spec.picture == "flash":
            # A line-up pattern: mid grey with a moving bar, a white flash every second.
            img = np.full((h, w), 235.0 if i in flashes else 60.0, np.float32)
            if i not in flashes:
                img[:, int((t % 1.0) * (w - 8)) :][:, :8] = 120
        elif spec.picture == "cuts":
            # A new shot at each cut: another texture, panning steadily within the shot.
            shot = sum(1 for c in cuts if c <= i)
            shot_rng = np.random.default_rng(spec.seed * 1000 + shot)
            # Sizes follow the picture, so every format sees the same shots.
            size = max(8, w // 20)
            blocks = shot_rng.integers(30, 200, size=(h // size + 1, w // size + 1))
            img = blocks.repeat(size, 0).repeat(size, 1)[:h, :w].astype(np.float32)
            img = np.roll(img, round(t * w / 10), axis=1)
        elif spec.picture == "moving":
            img = 40 + 80 * (1 + np.sin(xx / 37 + t * 3.1)) * (
                0.6 + 0.4 * np.cos(yy / 23 - t * 1.7)
            )
            cx, cy = int((0.5 + 0.4 * math.sin(t * 1.3)) * w), int((0.5 + 0.35 * math.cos(t)) * h)
            img[max(0, cy - 30) : cy + 30, max(0, cx - 40) : cx + 40] = 230
        elif spec.picture == "dark":
            # A night scene: dark, but textured and moving.
            img = 18 + 14 * (1 + np.sin(xx / 11 + yy / 7 + t * 12)) + texture / 12
        elif spec.picture == "static_ticker":
            img = static.copy()
            band = img[int(h * 0.88) :, :]
            band[:] = 30
            phase = int(t * 120)
            cols = (np.arange(w) + phase) % 48 < 30
            band[4:-4, cols] = 200
        else:  # static_small_motion: a still with one small moving object
            img = static.copy()
            cx = int((0.5 + 0.4 * math.sin(t * 2.0)) * (w - 24))
            img[h // 3 : h // 3 + 24, cx : cx + 24] = 235
        yield img


# -- sound ---------------------------------------------------------------------------
def _sound(spec: ClipSpec) -> npt.NDArray[np.float32]:
    rate, n = spec.sample_rate, round(spec.duration_s * spec.sample_rate)
    t = np.arange(n) / rate
    rng = np.random.default_rng(spec.seed)
    if spec.sound == "tone":
        mono = np.sin(2 * np.pi * 1000 * t)
    elif spec.sound == "recorded":
        mono = _recorded_sound(spec, n)
    elif spec.sound == "beeps":
        # The flash pattern's sound: a 1 kHz beep as long as each flash, silence between.
        mono = np.zeros(n)
        length = round(FLASH_FRAMES / float(spec.fps) * rate)
        for i in _event_frames(spec, "flash"):
            a = round(i / float(spec.fps) * rate)
            mono[a : a + length] = np.sin(2 * np.pi * 1000 * t[a : a + length])
    elif spec.sound == "impacts":
        # A struck sound at each cut (1 ms attack, 60 ms decay) over a steady music bed,
        # loud enough that the programme's loudness does not swing with the strikes.
        mono = 0.4 * np.sin(2 * np.pi * 220 * t) * (0.8 + 0.2 * np.sin(2 * np.pi * 0.3 * t))
        hit = np.arange(round(0.3 * rate)) / rate
        strike = rng.normal(0, 1, hit.size) * np.minimum(hit / 0.001, 1) * np.exp(-hit / 0.06)
        for i in _event_frames(spec, "cuts"):
            a = round(i / float(spec.fps) * rate)
            part = mono[a : a + strike.size]
            part += strike[: part.size]
    elif spec.sound == "music":
        notes = [110, 220, 277.2, 329.6, 440, 659.3]
        mono = np.zeros(n)
        for k, f in enumerate(notes):
            swell = 0.7 + 0.3 * np.sin(2 * np.pi * 0.5 * t + k)
            mono += (0.6 / (k + 1)) * np.sin(2 * np.pi * f * t + k) * swell
    else:  # speech-like: syllables of shaped noise and voiced buzz, with short pauses
        syllable = (np.sin(2 * np.pi * 4.0 * t) > -0.2) & (np.sin(2 * np.pi * 0.37 * t) > -0.7)
        voiced = np.sign(np.sin(2 * np.pi * 140 * t)) * 0.3 + rng.normal(0, 0.2, n)
        kernel = np.hanning(64)
        voiced = np.convolve(voiced, kernel / kernel.sum(), mode="same")
        # Pauses keep a room-tone floor 30 dB down: real speech is never digital silence.
        mono = voiced * np.where(syllable, 1.0, 0.03)
    stereo = np.stack([np.asarray(mono, dtype=np.float64)] * spec.channels)
    if spec.sound == "none":
        return np.zeros((spec.channels, n), np.float32)
    meter = LoudnessMeter(rate, _channel_names(spec.channels))
    meter.feed(stereo.astype(np.float32), 0.0)
    gain = 10 ** ((spec.level_lufs - meter.integrated_lufs()) / 20)
    return (stereo * gain).astype(np.float32)


def _recorded_sound(spec: ClipSpec, n: int) -> npt.NDArray[np.float64]:
    """The recording of ``spec.sound_file``, mono at the clip's rate, looped to ``n`` samples."""
    if spec.sound_file is None:
        raise ValueError('sound="recorded" needs a sound_file')
    resampler = av.AudioResampler(format="dbl", layout="mono", rate=spec.sample_rate)
    parts = []
    with av.open(spec.sound_file) as source:
        for frame in source.decode(audio=0):
            parts += [f.to_ndarray()[0] for f in resampler.resample(frame)]
    parts += [f.to_ndarray()[0] for f in resampler.resample(None)]
    once = np.concatenate(parts)
    return np.resize(once, n)


def _channel_names(channels: int) -> tuple[str, ...]:
    return {1: ("FC",), 2: ("FL", "FR"), 6: ("FL", "FR", "FC", "LFE", "BL", "BR")}.get(
        channels, tuple(f"C{i}" for i in range(channels))
    )


def _layout(channels: int) -> str:
    return {1: "mono", 2: "stereo", 6: "5.1"}.get(channels, f"{channels}c")


# -- the clip ------------------------------------------------------------------------
MAX_DURATION_S = 600.0  # the sound is made whole in memory: 10 min is ~0.5 GB of stereo
MAX_WIDTH, MAX_HEIGHT = 7680, 4320


def _validate(spec: ClipSpec) -> None:
    """Refuse a clip that cannot be made, with what to change (a ConfigError): FFmpeg's
    and numpy's own errors for these say nothing of the option behind them."""
    if not 0 < spec.duration_s <= MAX_DURATION_S:
        raise ConfigError(f"duration must be over 0 and at most {MAX_DURATION_S:g} s")
    if spec.video_codec:
        if not (
            16 <= spec.width <= MAX_WIDTH
            and 16 <= spec.height <= MAX_HEIGHT
            and spec.width % 2 == spec.height % 2 == 0
        ):
            raise ConfigError(
                f"size {spec.width}x{spec.height}: width and height must be even "
                f"(4:2:0 video), from 16x16 to {MAX_WIDTH}x{MAX_HEIGHT}"
            )
        if not 1 <= spec.fps <= 240:
            raise ConfigError(f"frame rate {spec.fps}: must be from 1 to 240")
        _encoder(spec.video_codec, "video")
    if spec.noise_levels < 0:
        raise ConfigError("noise (grain) must be 0 or more levels")
    if spec.audio_codec:
        if spec.channels not in (1, 2, 6):
            raise ConfigError(f"{spec.channels} channels: mono, stereo or 5.1 (1, 2 or 6)")
        if not 8000 <= spec.sample_rate <= 192000:
            raise ConfigError(f"sample rate {spec.sample_rate}: from 8000 to 192000 Hz")
        _encoder(spec.audio_codec, "audio")
    if spec.sound == "recorded" and spec.audio_codec:
        _recording(spec.sound_file)
    for defect in spec.defects:
        if defect.start >= spec.duration_s:  # one that runs past the end is cut there
            raise ConfigError(
                f"defect {defect.type} at {defect.start:g}-{defect.end:g} s starts after the "
                f"clip ends ({spec.duration_s:g} s)"
            )


def _recording(path: str | None) -> None:
    if not path:
        raise ConfigError("the recorded sound needs its file")
    try:
        with av.open(path) as source:
            if not source.streams.audio:
                raise ConfigError(f"sound file {path}: no audio in it")
    except (av.error.FFmpegError, OSError) as exc:
        raise ConfigError(f"sound file {path}: {reason(exc)}") from None


def _encoder(name: str, kind: str) -> None:
    try:
        codec = av.codec.Codec(name, "w")
    except av.codec.codec.UnknownCodecError:
        raise ConfigError(f"no {kind} encoder named {name!r} in this FFmpeg") from None
    if codec.type != kind:
        raise ConfigError(f"{name!r} encodes {codec.type}, not {kind}")


def make_clip(path: str | Path, spec: ClipSpec) -> list[TruthEvent]:
    """Encode the clip to ``path`` (container from its extension); returns the truth events.
    A spec that cannot be made is refused (ConfigError) before anything is written."""
    _validate(spec)
    truth: list[TruthEvent] = []
    video_defects = [
        d for d in spec.defects if d.type in ("black", "freeze", "dropped_frames", "video_loss")
    ]
    audio_defects = [d for d in spec.defects if d not in video_defects]
    # FFmpeg's TS muxer sends a PCR only with video packets by default: at a low
    # bitrate that is every 80 ms, over TR 101 290's 40 ms. Ask for 20 ms.
    mux_options = {"pcr_period": "20"} if Path(path).suffix.lower() == ".ts" else {}
    with av.open(str(path), "w", options=mux_options) as out:
        vstream: VideoStream | None = None
        astream: AudioStream | None = None
        if spec.video_codec:
            vstream = cast(VideoStream, out.add_stream(spec.video_codec, rate=spec.fps))
            vstream.width, vstream.height, vstream.pix_fmt = spec.width, spec.height, "yuv420p"
            vstream.time_base = 1 / spec.fps
            options: dict[str, object] = {"g": str(round(2 * float(spec.fps)))}
            if spec.video_codec in ("libx264", "libx265"):
                options["preset"] = "ultrafast"
            if spec.interlaced:
                options["flags"] = "+ildct+ilme"
                options["top"] = "1"
            vstream.options = options
            if spec.bitrate:
                vstream.bit_rate = spec.bitrate
        if spec.audio_codec:
            astream = cast(AudioStream, out.add_stream(spec.audio_codec, rate=spec.sample_rate))
            astream.layout = _layout(spec.channels)
        # Frames go to the muxer in time order, as a real encoder's would: the
        # muxer's interleaving then matches what real files look like.
        sources: list[Iterator[tuple[float, Any, Any]]] = []
        pcm = _sound(spec)  # made once: a talking face's mouth follows it
        if vstream is not None:
            sources.append(_video_frames(vstream, spec, pcm, video_defects, truth))
        if astream is not None:
            sources.append(_audio_frames(astream, spec, pcm, audio_defects, truth))
        for _, stream, frame in heapq.merge(*sources, key=lambda item: item[0]):
            for packet in stream.encode(frame):
                out.mux(packet)
        for stream in (vstream, astream):
            if stream is not None:
                for packet in stream.encode():
                    out.mux(packet)
    for event in truth:  # a defect that runs past the end is only as long as the clip
        event["end"] = min(event["end"], spec.duration_s)
    return sorted(truth, key=lambda e: (e["start"], e["type"]))


def _video_frames(
    stream: Any,
    spec: ClipSpec,
    pcm: npt.NDArray[np.float32],
    defects: list[Defect],
    truth: list[TruthEvent],
) -> Iterator[tuple[float, Any, Any]]:
    """(time, stream, frame) in time order; appends the video truth as it goes."""
    fps = float(spec.fps)
    truth += [_truth(d) for d in defects if d.type in ("black", "freeze")]
    frozen: npt.NDArray[np.uint8] | None = None
    shown: npt.NDArray[np.uint8] | None = None  # the picture of the frame before
    skipped: list[int] = []
    chroma = np.full((spec.height // 2, spec.width), 128, np.uint8)
    for i, luma in enumerate(_pictures(spec, pcm)):
        t = i / fps
        active = {d.type for d in defects if d.start <= t < d.end}
        if active & {"dropped_frames", "video_loss"}:
            skipped.append(i)
            continue
        if skipped:
            truth.append(_gap_truth(skipped, i, fps, defects))
            skipped = []
        if "freeze" in active:
            frozen = luma if frozen is None else frozen
            luma = frozen
        else:
            frozen = None
        if "black" in active:
            luma = np.full_like(luma, 16)
        if spec.pulldown and i % 5 == 4 and shown is not None:
            luma = shown
        for centre in spec.fades:
            # One black frame at any frame rate; the frames beside it keep 30% of the picture.
            away = abs(i - round(centre * fps))
            gain = 0.0 if away == 0 else max(0.3, min(1.0, away / (0.5 * fps)))
            if gain < 1.0:
                luma = (16 + (luma.astype(np.float32) - 16) * gain).round().astype(np.uint8)
        shown = luma
        frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma]), format="yuv420p")
        frame.pts = i
        yield t, stream, frame


def _gap_truth(skipped: list[int], resumed: int, fps: float, defects: list[Defect]) -> TruthEvent:
    start, end = skipped[0] / fps, resumed / fps
    kind = next(d.type for d in defects if d.start <= start < d.end)
    event: TruthEvent = {"type": kind, "start": start, "end": end, "details": {}}
    if kind == "dropped_frames":
        event["details"]["count"] = len(skipped)
    return event


def _shifted(
    pcm: npt.NDArray[np.float32], rate: int, offsets: list[Defect]
) -> npt.NDArray[np.float32]:
    """The sound with each av_offset span playing what was meant ``offset_ms`` earlier
    (audio late) or later (audio early) than the pictures."""
    out = pcm.copy()
    for d in offsets:
        a, b = round(d.start * rate), min(round(d.end * rate), pcm.shape[1])
        shift = round(float(d.params.get("offset_ms", 0)) * rate / 1000)
        source = np.clip(np.arange(a, b) - shift, 0, pcm.shape[1] - 1)
        out[:, a:b] = pcm[:, source]
    return out


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


def _audio_frames(
    stream: Any,
    spec: ClipSpec,
    pcm: npt.NDArray[np.float32],
    defects: list[Defect],
    truth: list[TruthEvent],
) -> Iterator[tuple[float, Any, Any]]:
    """(time, stream, frame) in time order; appends the audio truth."""
    rate = spec.sample_rate
    pcm = _shifted(pcm, rate, [d for d in defects if d.type == "av_offset"])
    for d in defects:
        a, b = round(d.start * rate), round(d.end * rate)
        if d.type == "silence":
            channel = d.params.get("channel")
            pcm[slice(None) if channel is None else channel, a:b] = 0
            details = {"channels": "all" if channel is None else [channel]}
            truth.append(_truth(d, details))
        elif d.type == "clipping":
            # Drive the span into a hard clipper; the truth is where samples really hit it.
            drive = 10 ** (d.params.get("gain_db", 12) / 20) / np.abs(pcm).max()
            pcm[:, a:b] = np.clip(pcm[:, a:b] * drive, -1, 1)
            hits = np.flatnonzero((np.abs(pcm[:, a:b]) >= 1.0).any(axis=0))
            if hits.size:
                span = Defect("clipping", (a + hits[0]) / rate, (a + hits[-1] + 1) / rate)
                truth.append(_truth(span))
        elif d.type == "loudness":
            pcm[:, a:b] *= 10 ** (d.params.get("gain_db", 12) / 20)
            truth.append(_truth(d))
    frame_size = stream.codec_context.frame_size or 1024
    lost = [d for d in defects if d.type == "audio_loss"]
    gap_start: float | None = None
    for pos in range(0, pcm.shape[1], frame_size):
        t = pos / rate
        if any(d.start <= t < d.end for d in lost):
            gap_start = t if gap_start is None else gap_start
            continue
        if gap_start is not None:
            truth.append({"type": "audio_loss", "start": gap_start, "end": t, "details": {}})
            gap_start = None
        chunk = pcm[:, pos : pos + frame_size]
        if chunk.shape[1] < frame_size:
            chunk = np.pad(chunk, ((0, 0), (0, frame_size - chunk.shape[1])))
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(chunk), format="fltp", layout=_layout(spec.channels)
        )
        frame.sample_rate = rate
        frame.pts = pos
        frame.time_base = Fraction(1, rate)
        yield t, stream, frame
    if gap_start is not None:
        truth.append(
            {"type": "audio_loss", "start": gap_start, "end": spec.duration_s, "details": {}}
        )


def _truth(defect: Defect, details: dict[str, Any] | None = None) -> TruthEvent:
    return {"type": defect.type, "start": defect.start, "end": defect.end, "details": details or {}}
