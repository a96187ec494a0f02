"""Read a transport stream once: the bytes go to the TS analyser on their way to the demuxer.

``TsTap`` is the file object PyAV reads from. Every byte read from the file is
handed to ``TsAnalyzer`` the first time it passes (libavformat probes the start
and seeks back; those bytes are not analysed twice), then on to libavformat. No
second read of the source, no second connection. The analyser sees the stream
strictly in order: reads that jump ahead (libavformat peeks at the end of a file
to estimate its duration) are passed on but analysed when they come in order.
"""

from __future__ import annotations

import io
import time
from typing import Any, BinaryIO

from avwatch.transport.analyser import SYNC, TS_PACKET, TsAnalyzer

__all__ = [
    "ANALYSIS_CHUNK",
    "Progress",
    "SequentialReader",
    "TsTap",
    "looks_like_ts",
    "read_as_it_comes",
]

# The analyser is fastest on large chunks (1.5M packets per CPU-second on 64 KiB,
# 2.5-4M on 256 KiB); a slow stream's chunk is analysed after MAX_HOLD_S anyway.
ANALYSIS_CHUNK = 256 * 1024
MAX_HOLD_S = 0.5


def looks_like_ts(head: bytes) -> bool:
    """Three sync bytes 188 bytes apart at the start (plain 188-byte TS)."""
    return len(head) >= 3 * TS_PACKET and all(head[i * TS_PACKET] == SYNC for i in range(3))


class Progress:
    """A source must hand on a packet's worth of bytes in every ``window_s``. Each socket
    read has a timeout, but a source that trickles a byte now and then never trips it;
    this does, as a TimeoutError naming the source."""

    def __init__(self, what: str, window_s: float) -> None:
        self.what = what
        self.window_s = window_s
        self._since = time.monotonic()
        self._bytes = 0

    def note(self, received: int) -> None:
        now = time.monotonic()
        self._bytes += received
        if self._bytes >= TS_PACKET:
            self._since, self._bytes = now, 0
        elif now - self._since > self.window_s:
            raise TimeoutError(
                f"{self.what}: under {TS_PACKET} bytes in {self.window_s:g} s (a stalled source)"
            )


def read_as_it_comes(
    response: Any, progress: Progress, limit: int | None = None, chunk: int = 256 * 1024
) -> bytes:
    """An HTTP body (its first ``limit`` bytes) read as the socket delivers it, with
    ``progress`` watching: a server that trickles it is a stalled source, not a wait
    without end (``read()`` waits for all of it)."""
    parts: list[bytes] = []
    received = 0
    while limit is None or received < limit:
        part: bytes = response.read1(chunk if limit is None else min(chunk, limit - received))
        if not part:
            break
        parts.append(part)
        received += len(part)
        progress.note(len(part))
    return b"".join(parts)


class SequentialReader(io.RawIOBase):
    """Base of avwatch's own readers of a source (a socket, a pipe, an HTTP body): read
    once, in order, never sought. ``tell()`` is how many bytes were handed on, which is
    all a ``TsTap`` needs; subclasses add what each ``readinto`` returns to ``position``."""

    position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.position


class TsTap(io.RawIOBase):
    def __init__(self, raw: BinaryIO | SequentialReader, analyzer: TsAnalyzer) -> None:
        self.raw = raw
        self.analyzer = analyzer
        self.analysed_to = 0  # bytes before this offset went to the analyser already
        self.pending: list[bytes] = []  # read, not yet analysed
        self.pending_bytes = 0
        self._pending_since = 0.0
        self.failed = False  # the source raised: PyAV holds that error for the caller

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(self.raw.seekable())  # a live socket is not

    def tell(self) -> int:
        return self.raw.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def read(self, size: int | None = -1) -> bytes:
        """What PyAV calls: the bytes read are handed on as they are. Through
        ``RawIOBase.read`` and ``readinto`` they were copied three more times, which
        cost as much as analysing them."""
        if self.failed:
            # The end, after an error: libavformat may read again before PyAV raises
            # the error it holds, and PyAV prints a second one, traceback and all.
            return b""
        start = self.raw.tell()
        try:
            data = self.raw.read(-1 if size is None else size) or b""
        except Exception:
            self.failed = True
            raise
        self._analyse(start, data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _analyse(self, start: int, data: bytes) -> None:
        """Hold the bytes for the analyser if they are the next in order."""
        n = len(data)
        if n == 0:  # the end: what is held goes to the analyser now
            self.flush_analysis()
            return
        end = start + n
        # Only the next bytes in order: libavformat also jumps to the end of a file
        # to estimate its duration, and those bytes come again later, in order.
        if start <= self.analysed_to < end:
            if not self.pending:
                self._pending_since = time.monotonic()
            skip = self.analysed_to - start
            self.pending.append(data[skip:] if skip else data)
            self.pending_bytes += n - skip
            self.analysed_to = end
            held_s = time.monotonic() - self._pending_since
            if self.pending_bytes >= ANALYSIS_CHUNK or held_s >= MAX_HOLD_S:
                self.flush_analysis()

    def flush_analysis(self) -> None:
        if self.pending:
            pending, self.pending, self.pending_bytes = self.pending, [], 0
            self.analyzer.feed(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush_analysis()
        self.raw.close()
        super().close()
