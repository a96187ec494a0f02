"""Decode a source once and turn it into analysis samples for every detector.

One ``MediaReader`` per stream: it demuxes the best video and audio stream,
decodes each packet once (codec frame threading on), makes one small grey
picture per frame with libswscale, converts audio to float32 blocks, and
places everything by PTS on a timeline whose t = 0 is the first displayed
video frame. Decoder trouble becomes ``DecodeIssue`` samples, not exceptions:
a frame the decoder flags as corrupt (concealment, decode error flags) and a
packet it refuses.

The ``analysis`` tier says which pictures are decoded (``types.Analysis``):
``fast`` decodes every one without the decoder's deblocking (the analysis
picture is a small shrink of it); ``patrol`` decodes keyframes only, each one
alone: it goes in, the decoder is drained and reset, so its picture comes out at
once instead of behind the reorder delay. A patrolled stream is decoded in full
GOP by GOP while ``full_wanted`` says so (escalation): the switch happens at a
keyframe, where the decoder needs nothing from before.

libav's log is deliberately not routed into Python: a decoder thread that logs
while a codec context is freed (which holds the GIL) deadlocks on the GIL.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import av
import av.audio.frame
import av.container
import av.stream
import av.video.frame
import av.video.stream
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from avwatch.decode.captions import SEARCHED_BYTES, a53_cc_data
from avwatch.decode.clock import PtsClock
from avwatch.decode.thumbnails import ThumbnailMaker
from avwatch.errors import reason
from avwatch.types import (
    STRICT_ERROR_DETECTION,
    Analysis,
    AudioBlock,
    AudioInfo,
    DecodeIssue,
    ErrorDetection,
    LumaPlane,
    MediaKind,
    PcmBlock,
    Sample,
    StreamInfo,
    VideoFrame,
    VideoInfo,
)

__all__ = [
    "MediaReader",
    "configure_video_decoder",
    "frames_to_float32",
    "pcm_to_float32",
]

log = logging.getLogger(__name__)

DEFAULT_ANALYSIS_WIDTH = 320
# How much audio may arrive before the first video frame fixes t = 0; past
# this the video is taken as missing and audio anchors the timeline.
_MAX_PREROLL_SAMPLES = 500
MAX_REORDER_S = 2.0  # a picture comes out at most this long after a later one went in
MAX_OWED = 256  # pictures owed by the decoder that are remembered
MAX_DEMUX_RESTARTS = 1000  # streams appearing mid-file, each costing a new demux
# Audio reaches the detectors in blocks this long. Each detector call costs a fixed
# part (a dozen numpy calls) beside its per-sample work, so fewer, longer blocks
# are cheaper; detection stays per 10 ms window, and an audio incident is seen at
# most one block later.
AUDIO_BLOCK_S = 0.4
# A patrolled keyframe stands for the pictures until the next one: the largest of the
# last few keyframe spacings (an encoder adds keyframes at cuts, sooner than its
# regular spacing), at least this until a few are known, at most the longest.
FIRST_KEY_SPACING_S = 2.0
LONGEST_KEY_SPACING_S = 10.0
KEY_SPACINGS_KEPT = 8
KEY_SPACINGS_TRUSTED = 3
VIDEO_BREAK_S = 1.0  # video packets this far apart (in PTS): a loss, not a GOP's spacing

_INT_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


def pcm_to_float32(frame: av.audio.frame.AudioFrame) -> PcmBlock:
    """Any PCM sample format to float32 of shape (channels, samples), full scale = 1.0."""
    fmt = frame.format
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not fmt.is_planar:  # packed: one row of interleaved samples
        data = data.reshape(-1, channels).T
    name = fmt.name.rstrip("p")
    if name in ("flt", "dbl"):
        return np.ascontiguousarray(data, dtype=np.float32)
    scaled = data.astype(np.float32)
    if name == "u8":
        scaled -= 128.0
    scaled /= _INT_SCALE[name]
    return scaled


def _whole_audio(frame: av.audio.frame.AudioFrame) -> bool:
    """Whether the frame's planes hold what its format, layout and sample count say. A
    damaged stream can decode to one that does not, and reading it (to_ndarray)
    crashes the process."""
    channels = frame.layout.nb_channels
    if frame.sample_rate <= 0 or channels <= 0:
        return False
    size = frame.samples * frame.format.bytes
    planes, need = (channels, size) if frame.format.is_planar else (1, size * channels)
    return len(frame.planes) == planes and all(p.buffer_size >= need for p in frame.planes)


def configure_video_decoder(
    stream: av.video.stream.VideoStream,
    threads: int,
    error_detection: ErrorDetection,
    analysis: Analysis = "full",
) -> None:
    """Codec threading (``threads`` 0: one per core), how strictly decoding is checked
    (FFmpeg's err_detect; "default" leaves FFmpeg's own) and, for ``fast``, no
    deblocking (skip_loop_filter). Before the first packet. A patrolled stream's
    keyframes are decoded one at a time: frame threads would only add delay."""
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = 1 if analysis == "patrol" else threads
    options: dict[str, str] = {}
    if error_detection != "default":
        options["err_detect"] = error_detection
    if analysis == "fast":
        options["skip_loop_filter"] = "all"
    if options:
        stream.codec_context.options = options


def frames_to_float32(frames: list[av.audio.frame.AudioFrame]) -> PcmBlock:
    """Audio frames that follow each other (same format and layout) as one float32
    block of shape (channels, samples).

    Planar float (AAC, MP3, Opus, AC-3 decode to it) is copied plane by plane
    straight into place, a block at a time. Converting each frame as it came
    (``to_ndarray`` stacks its planes anew) and joining them costs twice as much,
    as video decoding between audio frames leaves the caches cold.
    """
    first = frames[0]
    if first.format.name == "fltp" and len(first.planes) == first.layout.nb_channels:
        out = np.empty((first.layout.nb_channels, sum(f.samples for f in frames)), np.float32)
        at = 0
        for frame in frames:
            n = frame.samples
            for row, plane in zip(out, frame.planes, strict=True):
                # A plane is a buffer (its stub does not say so); padded past n.
                row[at : at + n] = np.frombuffer(plane, np.float32, n)  # type: ignore[call-overload]
            at += n
        return out
    pcms = [pcm_to_float32(frame) for frame in frames]
    return pcms[0] if len(pcms) == 1 else np.concatenate(pcms, axis=1)


def analysis_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """The analysis picture: the source shrunk by the smallest whole factor that fits
    ``max_width``. A whole factor makes each analysis pixel the plain average of a
    block of source pixels, and swscale's area filter is then about twice as cheap."""
    if width <= 0 or height <= 0:
        return max_width, max(2, max_width * 9 // 16 // 2 * 2)
    factor = max(1, math.ceil(width / max_width))
    return max(2, width // factor), max(2, height // factor // 2 * 2)


def _fps(stream: av.stream.Stream) -> float | None:
    # The guessed rate (libavformat's own pick between r_frame_rate and the
    # average) first: the average is lowered by the very drops we look for.
    for rate in (
        getattr(stream, "guessed_rate", None),
        getattr(stream, "average_rate", None),
        getattr(stream, "base_rate", None),
    ):
        if rate and 1 <= float(rate) <= 1000:
            return float(rate)
    return None


class MediaReader:
    """Decodes one container into ``VideoFrame``, ``AudioBlock`` and ``DecodeIssue`` samples."""

    def __init__(
        self,
        container: av.container.InputContainer,
        source: str,
        *,
        analysis_width: int = DEFAULT_ANALYSIS_WIDTH,
        interpolation: str = "fast_bilinear",
        audio_block_s: float = AUDIO_BLOCK_S,
        on_packet: Callable[[av.Packet[Any]], None] | None = None,
        decoder_threads: int = 0,
        error_detection: ErrorDetection = STRICT_ERROR_DETECTION,
        analysis: Analysis = "full",
    ) -> None:
        self.container = container
        self.analysis = analysis
        self.full_wanted: Callable[[], bool] = lambda: False
        self.thumbnail_every_s: float | None = None
        """Media seconds between colour thumbnails (VideoFrame.thumbnail); None: none."""
        self._thumbnails: ThumbnailMaker | None = None
        self._last_thumbnail = -math.inf
        """Asked at each keyframe of a patrolled stream: decode the next GOP in full?"""
        self._gop_full = analysis != "patrol"  # are the current GOP's pictures decoded
        self._last_key: float | None = None  # the last keyframe's time (seconds, absolute)
        self._spacings: deque[float] = deque(maxlen=KEY_SPACINGS_KEPT)
        self._packet_gap = False  # video stopped since the last keyframe: not a GOP
        self._last_packet_s: float | None = None
        self._key_bytes = 0  # the last keyframe's coded size, and the pictures' since
        self._between_bytes = self._between_pictures = 0
        self._undecoded_run = 0  # patrolled pictures in a row not decoded
        self._captions: dict[int, bytes] = {}  # A/53 caption data by picture PTS
        # The first stream of each kind that can be decoded; one that cannot (an unknown
        # or damaged codec id has no codec context) is left out and reported.
        self._undecodable: list[DecodeIssue] = []
        self.video = self._decodable(container.streams.video, "video")
        self.audio = self._decodable(container.streams.audio, "audio")
        wraps = container.format.name in ("mpegts", "mpegtsraw")
        self._clocks: dict[MediaKind, PtsClock] = {}
        video_info = audio_info = None
        if self.video is not None:
            configure_video_decoder(self.video, decoder_threads, error_detection, analysis)
            ctx = self.video.codec_context
            width, height = analysis_size(ctx.width, ctx.height, analysis_width)
            fps = _fps(self.video)
            video_info = VideoInfo(
                codec=ctx.name,
                width=ctx.width,
                height=ctx.height,
                fps=fps,
                pix_fmt=ctx.pix_fmt,
                analysis_width=width,
                analysis_height=height,
            )
            self._frame_duration = 1.0 / fps if fps else 0.04
            self._clocks["video"] = PtsClock(
                self.video.time_base or Fraction(1, 90000), wraps=wraps
            )
        if self.audio is not None:
            actx = self.audio.codec_context
            audio_info = AudioInfo(
                codec=actx.name,
                sample_rate=actx.sample_rate,
                channels=actx.channels,
                layout=actx.layout.name,
                channel_names=tuple(c.name for c in actx.layout.channels),
            )
            # Frames this close join into one block: half a sample, or one tick of a
            # coarse container time base (1 ms in Matroska).
            self._audio_join_tolerance = max(
                0.5 / max(actx.sample_rate, 1), float(self.audio.time_base or 0)
            )
            self._clocks["audio"] = PtsClock(
                self.audio.time_base or Fraction(1, 90000), wraps=wraps
            )
        duration = container.duration / av.time_base if container.duration else None
        self.info = StreamInfo(
            source=source,
            container=container.format.name,
            duration_s=duration,
            video=video_info,
            audio=audio_info,
        )
        # One scaler for the whole stream: libswscale's context is built once and
        # reused (frame.reformat() would rebuild it for every new frame).
        self._scaler = VideoReformatter()
        # Looked up once: PyAV would resolve the name on every call.
        self._interpolation = Interpolation[interpolation.upper()]
        self.t0: float | None = None
        self._last_time: dict[MediaKind, float] = {"video": 0.0, "audio": 0.0}
        self._owed_pts: list[int] = []  # video packets in, their pictures not yet out
        self._preroll: list[tuple[float, Any]] = []
        self.audio_block_s = audio_block_s
        self.bytes_read = 0  # demuxed packet bytes: the input bitrate of a live stream
        self._on_packet = on_packet  # sees every demuxed packet (evidence clips)
        # Audio frames joined into the next block, converted when it is complete.
        self._audio_pending: list[av.audio.frame.AudioFrame] = []
        self._audio_pending_start = 0.0
        self._audio_pending_end = 0.0

    # -- public ---------------------------------------------------------------------
    def samples(self) -> Iterator[Sample]:
        """All samples in demux order (each kind in PTS order), ending with the decoders flushed."""
        for issue in self._undecodable:
            yield from self._place(issue)
        streams = [s for s in (self.video, self.audio) if s is not None]
        packets = self.container.demux(streams)
        restarts = 0
        while True:
            try:
                packet = next(packets)
                self.bytes_read += packet.size
                if self._on_packet is not None:
                    self._on_packet(packet)
            except StopIteration:
                break
            except IndexError:
                # PyAV's demuxer fails on a packet of a stream that appeared after the
                # open (damaged bytes, a PMT that changed): that packet is dropped, and a
                # new demux knows the stream and leaves it out.
                restarts += 1
                if restarts > MAX_DEMUX_RESTARTS:
                    yield from self._place(
                        DecodeIssue(
                            self._last_time_any(), "demux_error", None, "streams keep appearing"
                        )
                    )
                    yield from self._drain_decoders()
                    break
                yield from self._place(
                    DecodeIssue(
                        self._last_time_any(), "stream_added", None, "a stream appeared mid-file"
                    )
                )
                packets = self.container.demux(streams)
                continue
            except (av.error.FFmpegError, OSError) as exc:
                # A truncated file or a dropped connection: report it and stop.
                yield from self._place(
                    DecodeIssue(self._last_time_any(), "demux_error", None, reason(exc))
                )
                yield from self._drain_decoders()
                break
            yield from self._decode(packet)
        yield from self._flush_audio()
        yield from self._release_preroll(force=True)

    # -- internals ------------------------------------------------------------------
    def _decode(self, packet: av.Packet[Any]) -> Iterator[Sample]:
        kind: MediaKind = "video" if packet.stream is self.video else "audio"
        if kind == "video":
            self._note_captions(packet)
        if kind == "video" and self.analysis == "patrol":
            self._note_packet_gap(packet)
            if packet.is_keyframe:
                self._undecoded_run = 0
                share = self._between_share(packet.size)
                was_full, self._gop_full = self._gop_full, self.full_wanted()
                if not self._gop_full:
                    yield from self._key_alone(packet, drain_first=was_full, share=share)
                    return
            else:
                self._between_bytes += packet.size
                self._between_pictures += 1
            if not packet.is_keyframe and not self._gop_full:
                self._undecoded_run += 1
                if self._undecoded_run * self._frame_duration <= LONGEST_KEY_SPACING_S:
                    yield from self._undecoded(packet)
                    return
                # No keyframe flagged for this long (intra refresh, a demuxer that
                # cannot tell): decoding every picture is the only way to see them.
                self._gop_full = True
        if kind == "video" and self.t0 is not None and packet.pts is not None:
            # Pictures before the first one shown (a stream joined mid-GOP) are not owed.
            self._owed_pts.append(packet.pts)
            if len(self._owed_pts) > MAX_OWED:  # a decoder giving nothing out: keep the latest
                del self._owed_pts[:-MAX_OWED]
            if packet.is_corrupt:
                yield from self._damaged_in_transport(packet, within_s=MAX_REORDER_S)
        try:
            frames = packet.decode()
        except (av.error.FFmpegError, ValueError) as exc:
            yield from self._place(
                DecodeIssue(self._last_time[kind], "decode_error", kind, reason(exc))
            )
            return
        for frame in frames:
            yield from self._frame(kind, frame)

    def _between_share(self, key_bytes: int) -> float | None:
        """The pictures since the last keyframe: mean size over that keyframe's."""
        share = None
        if self._key_bytes and self._between_pictures:
            share = self._between_bytes / self._between_pictures / self._key_bytes
        self._key_bytes, self._between_bytes, self._between_pictures = key_bytes, 0, 0
        return share

    def _key_alone(
        self, packet: av.Packet[Any], *, drain_first: bool, share: float | None
    ) -> Iterator[Sample]:
        """A patrolled keyframe: decoded, the decoder drained (its picture and, after a
        full GOP, the pictures it still held) and reset for the next one."""
        ctx = packet.stream.codec_context
        try:
            frames = [*ctx.decode(packet), *ctx.decode(None)]
        except (av.error.FFmpegError, ValueError) as exc:
            frames = []
            yield from self._place(
                DecodeIssue(self._last_time["video"], "decode_error", "video", reason(exc))
            )
        ctx.flush_buffers()
        for frame in frames:
            key = not drain_first or frame is frames[-1]
            yield from self._frame("video", frame, sampled=key, share=share if key else None)
        self._owed_pts.clear()  # nothing stays in the decoder

    def _note_packet_gap(self, packet: av.Packet[Any]) -> None:
        if packet.pts is None:
            return
        at = float(packet.pts * packet.time_base)
        last, self._last_packet_s = self._last_packet_s, at
        if last is not None and at - last > VIDEO_BREAK_S:
            self._packet_gap = True

    def _undecoded(self, packet: av.Packet[Any]) -> Iterator[Sample]:
        """A patrolled picture that is not decoded: only transport damage is seen."""
        if packet.is_corrupt and packet.pts is not None and self.t0 is not None:
            yield from self._damaged_in_transport(packet, within_s=LONGEST_KEY_SPACING_S)

    def _damaged_in_transport(self, packet: av.Packet[Any], within_s: float) -> Iterator[Sample]:
        """A video packet the demuxer found damaged, at its PTS; a PTS further than
        ``within_s`` from the last picture (a wrap or jump) at the last known place."""
        assert packet.pts is not None and self.t0 is not None
        at = float(packet.pts * packet.time_base) - self.t0
        if abs(at - self._last_time["video"]) > within_s:
            at = self._last_time["video"]
        yield from self._place(
            DecodeIssue(at, "corrupt_packet", "video", "video packet damaged in transport")
        )

    def _key_spacing(self, seconds: float) -> float:
        """How long a keyframe at ``seconds`` stands for, from the spacing of the last
        ones. A spacing across a break in the video (a loss) is not a GOP's."""
        last, self._last_key = self._last_key, seconds
        if last is not None and seconds > last and not self._packet_gap:
            self._spacings.append(seconds - last)
        self._packet_gap = False
        spacings = list(self._spacings)
        if len(spacings) < KEY_SPACINGS_TRUSTED:
            spacings.append(FIRST_KEY_SPACING_S)
        spacing = max(spacings)
        return min(max(spacing, self._frame_duration), LONGEST_KEY_SPACING_S)

    def _drain_decoders(self) -> Iterator[Sample]:
        for stream in (self.video, self.audio):
            if stream is None:
                continue
            kind: MediaKind = "video" if stream is self.video else "audio"
            try:
                frames = stream.codec_context.decode(None)
            except (av.error.FFmpegError, ValueError):
                continue
            for frame in frames:
                yield from self._frame(kind, frame)

    def _frame(
        self, kind: MediaKind, frame: Any, *, sampled: bool = False, share: float | None = None
    ) -> Iterator[Sample]:
        if kind == "audio" and not _whole_audio(frame):
            at = self._last_time["audio"]
            yield from self._place(DecodeIssue(at, "decode_error", "audio", "malformed frame"))
            return
        clock = self._clocks[kind]
        if kind == "video":
            duration_ticks = round(self._frame_duration / clock.seconds_per_tick)
        else:
            duration_ticks = round(frame.samples / frame.sample_rate / clock.seconds_per_tick)
        # No timestamp: assume it follows the previous sample of its kind.
        pts = frame.pts if frame.pts is not None else (clock.last_pts or 0) + clock.last_duration
        seconds, jump = clock.seconds(pts, duration_ticks)
        if jump is not None:
            rel = seconds - (self.t0 or 0.0)
            yield from self._place(DecodeIssue(rel, jump, kind, f"{kind} PTS {jump}"))
        if kind == "video" and self._owed_pts:
            yield from self._lost_pictures(pts, seconds, clock.seconds_per_tick)
        if kind == "video":
            assert self.info.video is not None
            luma: LumaPlane = self._scaler.reformat(
                frame,
                width=self.info.video.analysis_width,
                height=self.info.video.analysis_height,
                format="gray",
                interpolation=self._interpolation,
                # One thread: the shrink is short, and swscale's own slice threads
                # (PyAV's default) spend more CPU waking up beside the decoder's
                # threads than they save. Parallelism comes from decoding and streams.
                threads=1,
            ).to_ndarray()  # type: ignore[assignment]  # "gray" is uint8
            captions = self._captions.pop(frame.pts, None) if self._captions else None
            thumbnail = None
            every = self.thumbnail_every_s
            if every is not None and not 0 <= seconds - self._last_thumbnail < every:
                thumbnail = self._thumbnail(frame)  # (also after the clock went back)
                self._last_thumbnail = seconds
            keyframe = bool(frame.key_frame) or sampled  # a recovery point is one too
            spacing = self._key_spacing(seconds) if keyframe else 0.0
            sample: Any = VideoFrame(
                seconds,
                spacing if sampled else self._frame_duration,
                luma,
                keyframe,
                captions,
                sampled,
                share,
                thumbnail,
            )
            if self.t0 is None:
                self.t0 = seconds
            if frame.is_corrupt:
                # The decoder hid damage (error concealment) or flagged the frame.
                yield from self._place(
                    DecodeIssue(seconds - self.t0, "concealment", "video", "corrupt frame")
                )
        else:
            yield from self._gather_audio(seconds, frame)
            return
        yield from self._place(sample, absolute=True)

    def _thumbnail(self, frame: av.VideoFrame) -> bytes | None:
        video = self.info.video
        assert video is not None
        if self._thumbnails is None:
            self._thumbnails = ThumbnailMaker(video.analysis_width / video.analysis_height)
        return self._thumbnails.make(frame)

    def _note_captions(self, packet: av.Packet[Any]) -> None:
        """A picture's caption data, kept by PTS until its picture comes out."""
        cc_data = a53_cc_data(memoryview(packet)[:SEARCHED_BYTES].tobytes())
        if cc_data is not None and packet.pts is not None:
            self._captions[packet.pts] = cc_data
            if len(self._captions) > MAX_OWED:  # pictures that never came out
                del self._captions[next(iter(self._captions))]

    def _lost_pictures(self, pts: int, seconds: float, seconds_per_tick: float) -> Iterator[Sample]:
        """Pictures come out in display order: a packet with an earlier PTS whose
        picture has not come out by now never will (the decoder dropped it)."""
        owed, self._owed_pts = self._owed_pts, []
        for owed_pts in owed:
            ago = (pts - owed_pts) * seconds_per_tick
            if ago > MAX_REORDER_S or ago < -MAX_REORDER_S:
                continue  # a timestamp jump or wrap: no telling
            if ago <= 0:
                if owed_pts != pts:
                    self._owed_pts.append(owed_pts)  # still to come
                continue
            at = seconds - ago - (self.t0 or 0.0)
            yield from self._place(
                DecodeIssue(at, "frame_lost", "video", "the decoder dropped a picture")
            )

    def _gather_audio(self, seconds: float, frame: av.audio.frame.AudioFrame) -> Iterator[Sample]:
        """Join contiguous audio frames into blocks of about ``audio_block_s``.

        Codec frames are 20-40 ms; detectors cost per call, so they get whole
        blocks (``AUDIO_BLOCK_S``). Only frames that follow each other (within half
        a sample, or one tick of a coarse container time base) in the same format,
        layout and rate are joined: each block keeps the PTS of its first frame.
        """
        pending = self._audio_pending
        if pending and (
            abs(seconds - self._audio_pending_end) > self._audio_join_tolerance
            or frame.format.name != pending[0].format.name
            or frame.layout.name != pending[0].layout.name
            or frame.sample_rate != pending[0].sample_rate
        ):
            yield from self._flush_audio()
        if not self._audio_pending:
            self._audio_pending_start = seconds
        self._audio_pending.append(frame)
        self._audio_pending_end = seconds + frame.samples / frame.sample_rate
        if self._audio_pending_end - self._audio_pending_start >= self.audio_block_s:
            yield from self._flush_audio()

    def _flush_audio(self) -> Iterator[Sample]:
        pending, self._audio_pending = self._audio_pending, []
        if not pending:
            return
        pcm = frames_to_float32(pending)
        block = AudioBlock(self._audio_pending_start, pcm, pending[0].sample_rate)
        yield from self._place(block, absolute=True)

    def _place(self, sample: Sample, *, absolute: bool = False) -> Iterator[Sample]:
        """Shift an absolute-time sample onto the t0 timeline, holding it until t0 is known."""
        if self.t0 is not None and not self._preroll:  # the usual case, once t = 0 is known
            if absolute:
                self._to_timeline(sample, sample.time)
            yield sample
            return
        if absolute:
            self._preroll.append((sample.time, sample))
        else:
            # Issues already carry relative time; they only wait behind earlier samples.
            self._preroll.append((float("nan"), sample))
        yield from self._release_preroll(force=False)

    def _release_preroll(self, *, force: bool) -> Iterator[Sample]:
        if self.t0 is None:
            too_long = len(self._preroll) > _MAX_PREROLL_SAMPLES
            if self.video is not None and not (force or too_long):
                return
            first = [t for t, _ in self._preroll if t == t]  # skip NaN (issues)
            if not first:
                if not force:
                    return
                self.t0 = 0.0
            else:
                self.t0 = min(first)
        held, self._preroll = self._preroll, []
        for absolute, sample in held:
            if absolute == absolute:  # not NaN: an absolute time
                self._to_timeline(sample, absolute)
            yield sample

    def _to_timeline(self, sample: Sample, absolute: float) -> None:
        """Put a video frame or audio block at ``absolute`` seconds onto the t0 timeline."""
        assert self.t0 is not None and not isinstance(sample, DecodeIssue)
        sample.time = absolute - self.t0
        self._last_time["video" if isinstance(sample, VideoFrame) else "audio"] = sample.time

    def _decodable(self, streams: Any, kind: MediaKind) -> Any:
        for stream in streams:
            if stream.codec_context is not None:
                return stream
            self._undecodable.append(
                DecodeIssue(0.0, "no_decoder", kind, f"stream #{stream.index}: no decoder")
            )
        return None

    def _last_time_any(self) -> float:
        return max(self._last_time.values())
