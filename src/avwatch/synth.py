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

from avwatch.loudness import LoudnessMeter

__all__ = ["ClipSpec", "Defect", "make_clip", "parse_defect"]

Picture = Literal["moving", "dark", "static_ticker", "static_small_motion"]
Sound = Literal["tone", "music", "speech", "none"]

DEFECT_TYPES = (
    "black",
    "freeze",
    "dropped_frames",
    "video_loss",
    "silence",
    "clipping",
    "loudness",
    "audio_loss",
)


@dataclass(frozen=True)
class Defect:
    """One defect over [start, end) media seconds.

    ``params``: silence ``channel`` (index; absent = all), clipping ``gain_db``
    (drive into the clipper, default 12), loudness ``gain_db`` (default +12).
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


def _pictures(spec: ClipSpec) -> Iterator[npt.NDArray[np.uint8]]:
    """Limited-range luma planes, one per frame."""
    if spec.picture_file is not None:
        yield from _recorded(spec)
        return
    h, w = spec.height, spec.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(spec.seed)
    texture = rng.integers(0, 60, size=(h // 8 + 1, w // 8 + 1)).repeat(8, 0).repeat(8, 1)[:h, :w]
    static = (60 + 0.3 * xx / w * 255 * 0.5 + texture).astype(np.float32)
    fps = float(spec.fps)
    for i in range(math.ceil(spec.duration_s * fps)):
        t = i / fps
        if spec.picture == "moving":
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
        if spec.noise_levels:
            img = img + rng.normal(0, spec.noise_levels, img.shape).astype(np.float32)
        yield np.clip(img, 16, 235).astype(np.uint8)


# -- sound ---------------------------------------------------------------------------
def _sound(spec: ClipSpec) -> npt.NDArray[np.float32]:
    rate, n = spec.sample_rate, round(spec.duration_s * spec.sample_rate)
    t = np.arange(n) / rate
    rng = np.random.default_rng(spec.seed)
    if spec.sound == "tone":
        mono = np.sin(2 * np.pi * 1000 * t)
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


def _channel_names(channels: int) -> tuple[str, ...]:
    return {1: ("FC",), 2: ("FL", "FR"), 6: ("FL", "FR", "FC", "LFE", "BL", "BR")}.get(
        channels, tuple(f"C{i}" for i in range(channels))
    )


def _layout(channels: int) -> str:
    return {1: "mono", 2: "stereo", 6: "5.1"}.get(channels, f"{channels}c")


# -- the clip ------------------------------------------------------------------------
def make_clip(path: str | Path, spec: ClipSpec) -> list[dict[str, Any]]:
    """Encode the clip to ``path`` (container from its extension); returns the truth events."""
    truth: list[dict[str, Any]] = []
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
        if vstream is not None:
            sources.append(_video_frames(vstream, spec, video_defects, truth))
        if astream is not None:
            sources.append(_audio_frames(astream, spec, audio_defects, truth))
        for _, stream, frame in heapq.merge(*sources, key=lambda item: item[0]):
            for packet in stream.encode(frame):
                out.mux(packet)
        for stream in (vstream, astream):
            if stream is not None:
                for packet in stream.encode():
                    out.mux(packet)
    return sorted(truth, key=lambda e: (e["start"], e["type"]))


def _video_frames(
    stream: Any, spec: ClipSpec, defects: list[Defect], truth: list[dict[str, Any]]
) -> Iterator[tuple[float, Any, Any]]:
    """(time, stream, frame) in time order; appends the video truth as it goes."""
    fps = float(spec.fps)
    truth += [_truth(d) for d in defects if d.type in ("black", "freeze")]
    frozen: npt.NDArray[np.uint8] | None = None
    skipped: list[int] = []
    chroma = np.full((spec.height // 2, spec.width), 128, np.uint8)
    for i, luma in enumerate(_pictures(spec)):
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
        frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma]), format="yuv420p")
        frame.pts = i
        yield t, stream, frame


def _gap_truth(
    skipped: list[int], resumed: int, fps: float, defects: list[Defect]
) -> dict[str, Any]:
    start, end = skipped[0] / fps, resumed / fps
    kind = next(d.type for d in defects if d.start <= start < d.end)
    event: dict[str, Any] = {"type": kind, "start": start, "end": end, "details": {}}
    if kind == "dropped_frames":
        event["details"]["count"] = len(skipped)
    return event


def _audio_frames(
    stream: Any, spec: ClipSpec, defects: list[Defect], truth: list[dict[str, Any]]
) -> Iterator[tuple[float, Any, Any]]:
    """(time, stream, frame) in time order; appends the audio truth."""
    rate = spec.sample_rate
    pcm = _sound(spec)
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


def _truth(defect: Defect, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": defect.type, "start": defect.start, "end": defect.end, "details": details or {}}
