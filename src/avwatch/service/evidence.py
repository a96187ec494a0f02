"""Evidence of an incident: the last seconds of the input as a playable clip, and
pictures from before and during the defect.

``PacketRing`` holds references to the demuxed packets of the last
``seconds`` (they are decoded already; keeping them costs the compressed
bitrate, ~1 MB a second at 8 Mb/s, and no copy). ``write_clip`` remuxes a
snapshot into MPEG-TS, starting at a video keyframe so that any player can
open it. Remuxing works for every input (UDP, RTMP, RTSP, HLS, files) since it
needs packets, not transport bytes.

``RecentPictures`` keeps an analysis picture every half second of media for
the "before" picture; ``encode_png`` makes PNG of them (and of each status's
thumbnail).
"""

from __future__ import annotations

import io
import math
from collections import deque
from typing import Any

import av
import numpy as np

from avwatch.types import LumaPlane, MediaTime

__all__ = ["PacketRing", "RecentPictures", "clip_as_mp4", "encode_png", "write_clip"]

JUMP_BACK_S = 1.0
PICTURE_EVERY_S = 0.5
PICTURES_KEPT = 12


def encode_png(luma: LumaPlane) -> bytes:
    """A grey analysis picture as PNG, by libavcodec's encoder. Every stream sends one
    with each status: zlib's fastest level costs a third of its default's CPU for a
    few per cent more bytes."""
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height = int(luma.shape[1]), int(luma.shape[0])
    codec.pix_fmt = "gray"
    codec.options = {"compression_level": "1"}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(luma), format="gray")
    return b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])


class RecentPictures:
    """An analysis picture every ``PICTURE_EVERY_S`` of media, the last ``PICTURES_KEPT``
    (references to the decoded pictures, not copies)."""

    def __init__(self) -> None:
        self._kept: deque[tuple[MediaTime, LumaPlane]] = deque(maxlen=PICTURES_KEPT)

    def add(self, time: MediaTime, luma: LumaPlane) -> None:
        if not self._kept or time - self._kept[-1][0] >= PICTURE_EVERY_S:
            self._kept.append((time, luma))

    def before(self, start: MediaTime) -> LumaPlane | None:
        """The latest picture from at least ``PICTURE_EVERY_S`` before ``start``."""
        earlier = [luma for t, luma in self._kept if t <= start - PICTURE_EVERY_S]
        return earlier[-1] if earlier else None

    def clear(self) -> None:
        self._kept.clear()


class PacketRing:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._packets: deque[tuple[float, Any]] = deque()
        # Seconds per tick of each stream: multiplying Fractions for every packet
        # cost more than the rest of add().
        self._tick: dict[int, float] = {}

    def add(self, packet: Any) -> None:
        dts = packet.dts
        if dts is None:
            return  # a flush packet: nothing to keep
        index = packet.stream.index
        tick = self._tick.get(index)
        if tick is None:
            if packet.time_base is None:
                return
            tick = self._tick[index] = float(packet.time_base)
        t = dts * tick
        # Keep by the packets' own clock. Audio and video interleave loosely (one may
        # run a little behind the other); only a real jump back restarts the window.
        if self._packets and t < self._packets[-1][0] - JUMP_BACK_S:
            self._packets.clear()
        self._packets.append((t, packet))
        while t - self._packets[0][0] > self.seconds:
            self._packets.popleft()

    def snapshot(self) -> list[Any]:
        return [packet for _, packet in self._packets]

    def clear(self) -> None:
        self._packets.clear()


def write_clip(streams: list[Any], packets: list[Any]) -> bytes | None:
    """``packets`` of ``streams`` (input streams) as an MPEG-TS file; None if the
    snapshot holds no video keyframe to start from."""
    has_video = any(s.type == "video" for s in streams)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mpegts") as out:
        mapping = {s.index: out.add_stream_from_template(s) for s in streams}
        last_dts: dict[int, float] = {}
        started = not has_video
        for packet in packets:
            target = mapping.get(packet.stream.index)
            if target is None:
                continue
            if not started:
                if not (packet.stream.type == "video" and packet.is_keyframe):
                    continue
                started = True
            # The muxer wants each stream's DTS to increase; a source that stepped back
            # (a loop, a splice) would fail the whole clip, so such packets are left out.
            dts = float(packet.dts * packet.time_base)
            if dts <= last_dts.get(packet.stream.index, -math.inf):
                continue
            last_dts[packet.stream.index] = dts
            # A copy: the ring's packet may go into another clip later.
            copy = av.Packet(bytes(packet))
            copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
            copy.is_keyframe = packet.is_keyframe
            copy.stream = target
            out.mux(copy)
        if not started:
            return None
    return buffer.getvalue()


def clip_as_mp4(ts: bytes) -> bytes:
    """The same packets in MP4, which browsers play in a <video> element (TS they do not)."""
    buffer = io.BytesIO()
    with (
        av.open(io.BytesIO(ts), "r", format="mpegts") as source,
        av.open(buffer, "w", format="mp4") as out,
    ):
        streams = [*source.streams.video[:1], *source.streams.audio[:1]]
        mapping = {s.index: out.add_stream_from_template(s) for s in streams}
        for packet in source.demux(streams):
            if packet.dts is None:
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)
    return buffer.getvalue()
