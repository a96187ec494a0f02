"""Encoding a synthetic clip: its pictures and sound with the defects applied, in
any container and codec PyAV writes, and the truth of what was put in."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

from avwatch.errors import ConfigError, reason
from avwatch.lab.synth import qc_truth
from avwatch.lab.synth.captions import with_captions
from avwatch.lab.synth.pictures import pictures_in_colour
from avwatch.lab.synth.scte35 import add_ad_breaks
from avwatch.lab.synth.sounds import channel_names, layout, shifted, sound
from avwatch.lab.synth.spec import ClipSpec, Defect
from avwatch.lab.synth.tracks import add_track_loss
from avwatch.lab.truth import TruthEvent

__all__ = ["make_clip"]


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
    ad_breaks = [d for d in spec.defects if d.type == "ad_break"]
    if ad_breaks and (Path(path).suffix.lower() != ".ts" or not spec.video_codec):
        raise ConfigError("ad_break defects are SCTE-35 cues: they need a .ts clip with video")
    track_losses = [d for d in spec.defects if d.type == "track_loss"]
    if track_losses and not (
        Path(path).suffix.lower() == ".ts" and spec.video_codec and spec.audio_codec
    ):
        raise ConfigError("track_loss rewrites the PMT: it needs a .ts clip with video and audio")
    if spec.captions and (spec.video_codec != "libx264" or Path(path).suffix.lower() != ".ts"):
        raise ConfigError("captions are written as H.264 SEI: they need libx264 in a .ts clip")
    truth: list[TruthEvent] = []
    video_defects = [
        d for d in spec.defects if d.type in ("black", "freeze", "dropped_frames", "video_loss")
    ]
    audio_defects = [
        d
        for d in spec.defects
        if d not in video_defects and d.type not in ("ad_break", "captions_loss", "track_loss")
    ]
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
                options["preset"] = spec.preset
            if spec.interlaced:
                options["flags"] = "+ildct+ilme"
                options["top"] = "1"
            vstream.options = options
            if spec.bitrate:
                vstream.bit_rate = spec.bitrate
        if spec.audio_codec:
            astream = cast(AudioStream, out.add_stream(spec.audio_codec, rate=spec.sample_rate))
            astream.layout = layout(spec.channels)
        # Frames go to the muxer in time order, as a real encoder's would: the
        # muxer's interleaving then matches what real files look like.
        sources: list[Iterator[tuple[float, Any, Any]]] = []
        pcm = sound(spec)  # made once: a talking face's mouth follows it
        if vstream is not None:
            sources.append(_video_frames(vstream, spec, pcm, video_defects, truth))
        if astream is not None:
            sources.append(_audio_frames(astream, spec, pcm, audio_defects, truth))
        captioned = _captioned(spec, truth)
        for _, stream, frame in heapq.merge(*sources, key=lambda item: item[0]):
            for packet in stream.encode(frame):
                out.mux(captioned(packet) if stream is vstream else packet)
        for stream in (vstream, astream):
            if stream is not None:
                for packet in stream.encode():
                    out.mux(captioned(packet) if stream is vstream else packet)
    for loss in track_losses:
        truth += add_track_loss(Path(path), loss)
    if ad_breaks:
        truth += add_ad_breaks(Path(path), ad_breaks)
    for event in truth:  # a defect that runs past the end is only as long as the clip
        event["end"] = min(event["end"], spec.duration_s)
    return sorted(truth, key=lambda e: (e["start"], e["type"]))


def _captioned(
    spec: ClipSpec, truth: list[TruthEvent]
) -> Callable[[av.Packet[Any]], av.Packet[Any]]:
    """What each video packet becomes: with caption data, unless captions are off or
    in a ``captions_loss`` span then (whose truth it appends)."""
    losses = [d for d in spec.defects if d.type == "captions_loss"]
    truth += [
        {"type": "captions_missing", "start": float(d.start), "end": float(d.end), "details": {}}
        for d in losses
    ]

    def captioned(packet: av.Packet[Any]) -> av.Packet[Any]:
        if not spec.captions or packet.pts is None or packet.time_base is None:
            return packet
        t = float(packet.pts * packet.time_base)
        if any(d.start <= t < d.end for d in losses):
            return packet
        return with_captions(packet, int(packet.pts))

    return captioned


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
    blacks = qc_truth.BlackFrames(fps)
    frozen: npt.NDArray[np.uint8] | None = None
    shown: npt.NDArray[np.uint8] | None = None  # the picture of the frame before
    skipped: list[int] = []
    neutral = np.full((spec.height // 2, spec.width), 128, np.uint8)
    frozen_chroma = shown_chroma = neutral
    for i, (luma, chroma) in enumerate(pictures_in_colour(spec, pcm)):
        t = i / fps
        active = {d.type for d in defects if d.start <= t < d.end}
        if active & {"dropped_frames", "video_loss"}:
            skipped.append(i)
            blacks.close()
            continue
        if skipped:
            truth.append(_gap_truth(skipped, i, fps, defects))
            skipped = []
        if "freeze" in active:
            if frozen is None:
                frozen, frozen_chroma = luma, chroma
            luma, chroma = frozen, frozen_chroma
        else:
            frozen = None
        if "black" in active:
            luma, chroma = np.full_like(luma, 16), neutral
        if spec.pulldown and i % 5 == 4 and shown is not None:
            luma, chroma = shown, shown_chroma
        for centre in spec.fades:
            # One black frame at any frame rate; the frames beside it keep 30% of the picture.
            away = abs(i - round(centre * fps))
            gain = 0.0 if away == 0 else max(0.3, min(1.0, away / (0.5 * fps)))
            if gain < 1.0:
                luma = (16 + (luma.astype(np.float32) - 16) * gain).round().astype(np.uint8)
                chroma = (128 + (chroma.astype(np.float32) - 128) * gain).round().astype(np.uint8)
        shown, shown_chroma = luma, chroma
        blacks.add(i, luma, "black" in active)
        frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma]), format="yuv420p")
        frame.pts = i
        yield t, stream, frame
    blacks.close()
    truth += blacks.events


def _gap_truth(skipped: list[int], resumed: int, fps: float, defects: list[Defect]) -> TruthEvent:
    start, end = skipped[0] / fps, resumed / fps
    kind = next(d.type for d in defects if d.start <= start < d.end)
    event: TruthEvent = {"type": kind, "start": start, "end": end, "details": {}}
    if kind == "dropped_frames":
        event["details"]["count"] = len(skipped)
    return event


def _audio_frames(
    stream: Any,
    spec: ClipSpec,
    pcm: npt.NDArray[np.float32],
    defects: list[Defect],
    truth: list[TruthEvent],
) -> Iterator[tuple[float, Any, Any]]:
    """(time, stream, frame) in time order; appends the audio truth."""
    rate = spec.sample_rate
    pcm = shifted(pcm, rate, [d for d in defects if d.type == "av_offset"])
    for d in defects:
        a, b = round(d.start * rate), round(d.end * rate)
        if d.type == "silence":
            channel = d.params.get("channel")
            pcm[slice(None) if channel is None else channel, a:b] = 0
            details = {"channels": "all" if channel is None else [channel]}
            truth.append(_truth(d, details))
        elif d.type == "clipping":
            # Drive the span into a hard clipper; the truth is measured below.
            drive = 10 ** (d.params.get("gain_db", 12) / 20) / np.abs(pcm).max()
            pcm[:, a:b] = np.clip(pcm[:, a:b] * drive, -1, 1)
        elif d.type == "loudness":
            # A gain error ahead of a fixed-point stage: what passes full scale clips.
            gain = 10 ** (d.params.get("gain_db", 12) / 20)
            pcm[:, a:b] = np.clip(pcm[:, a:b] * gain, -1, 1)
    names = channel_names(spec.channels)
    runs = {"qc": qc_truth.loudness_runs(pcm, rate, names, "qc")}
    if shifts := [_truth(d) for d in defects if d.type == "loudness"]:
        runs["live"] = qc_truth.loudness_runs(pcm, rate, names, "live")
        truth += [e for s in shifts if (e := qc_truth.loudness_shift(s, runs))]
    frame_size = stream.codec_context.frame_size or 1024
    lost = [d for d in defects if d.type == "audio_loss"]
    truth += qc_truth.clipping(pcm, rate, [(d.start, d.end) for d in lost])
    truth += qc_truth.silences(pcm, rate, truth, [(d.start, d.end) for d in lost])
    truth += qc_truth.loudness_drifts(runs["qc"], truth)
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
            np.ascontiguousarray(chunk), format="fltp", layout=layout(spec.channels)
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
