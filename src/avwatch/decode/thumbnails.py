"""Small colour pictures of the decoded video, as JPEG, for tiles and reports.

Made from the decoded frame (not the grey analysis picture) by libswscale and FFmpeg's
MJPEG encoder: one thumbnail of a 1080p picture costs about a quarter of a
millisecond, so one every couple of seconds is nothing beside decoding.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
from av.video.reformatter import Interpolation, VideoReformatter

__all__ = ["THUMBNAIL_WIDTH", "ThumbnailMaker"]

THUMBNAIL_WIDTH = 192
JPEG_QSCALE = 5  # 2 (best) .. 31: about 4 KB at 192x108


class ThumbnailMaker:
    """``aspect``: the picture's display width over height (the analysis picture's)."""

    def __init__(self, aspect: float, width: int = THUMBNAIL_WIDTH) -> None:
        self.width = width
        self.height = max(2, round(width / aspect / 2) * 2)
        self._scaler = VideoReformatter()
        self._encoder: Any = None

    def make(self, frame: av.VideoFrame) -> bytes | None:
        """The picture as a JPEG; None when it cannot be made."""
        height = self.height
        encoder = self._encoder_for(height)
        small = self._scaler.reformat(
            frame,
            width=self.width,
            height=height,
            format="yuvj420p",
            interpolation=Interpolation.FAST_BILINEAR,
            threads=1,
        )
        try:
            packets = encoder.encode(small)
        except (av.error.FFmpegError, ValueError):
            self._encoder = None
            return None
        return b"".join(bytes(p) for p in packets) or None

    def _encoder_for(self, height: int) -> Any:
        encoder = self._encoder
        if encoder is None or encoder.height != height:
            encoder = av.CodecContext.create("mjpeg", "w")
            encoder.width, encoder.height = self.width, height
            encoder.pix_fmt = "yuvj420p"
            encoder.time_base = Fraction(1, 25)
            quantiser = str(JPEG_QSCALE)  # the rate control pinned to one quality
            encoder.options = {"qmin": quantiser, "qmax": quantiser}
            self._encoder = encoder
        return encoder
