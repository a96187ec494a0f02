"""MPEG-TS over plain HTTP, read by avwatch itself so the TS analyser sees every byte.

An encoder's HTTP TS output (``http://encoder/live.ts``) or a TS file on a web
server is one long response body. ``HttpTsReader`` holds that response and is
the file object a ``TsTap`` and PyAV read: one connection, each byte read once.
A body that does not start with transport packets (MP4, an HTML error page)
raises ``NotTs`` and the caller leaves the URL to libavformat. A live response
may begin mid-packet: the bytes before the first packet boundary are skipped.

Each socket read has a timeout, but a source that trickles a byte now and then
never trips it: the reader also needs a packet's worth of bytes in every
``timeout_s``, or it gives up as a source that stopped.
"""

from __future__ import annotations

import urllib.request
from typing import Any

from avwatch.input.tap import Progress, SequentialReader, looks_like_ts, read_as_it_comes
from avwatch.transport.analyser import TS_PACKET

__all__ = ["HttpTsReader", "NotTs", "packet_start"]

PROBE_BYTES = 4 * TS_PACKET


class NotTs(Exception):
    """The response body is not MPEG-TS."""


def packet_start(head: bytes) -> int | None:
    """Where the first of three packets 188 bytes apart begins in ``head``, if anywhere."""
    for offset in range(min(TS_PACKET, len(head))):
        if looks_like_ts(head[offset : offset + 3 * TS_PACKET]):
            return offset
    return None


class HttpTsReader(SequentialReader):
    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        # One timeout for connecting and for each read (urllib sets it on the socket).
        self._response: Any = urllib.request.urlopen(url, timeout=timeout_s)
        self._progress = Progress(url, timeout_s)
        try:
            head = read_as_it_comes(self._response, self._progress, PROBE_BYTES)
            start = packet_start(head)
            if start is None:
                raise NotTs(f"{url}: the response is not MPEG-TS")
        except BaseException:
            self._response.close()
            raise
        self._head = memoryview(head[start:])  # handed on before the rest of the body

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
        else:
            chunk = self._read1(len(buffer))
            n = len(chunk)
            buffer[:n] = chunk
        self.position += n
        return int(n)

    def _read1(self, size: int) -> bytes:
        """What the socket has, up to ``size`` (one read, not a wait for all of it)."""
        chunk: bytes = self._response.read1(size)
        self._progress.note(len(chunk))
        return chunk

    def close(self) -> None:
        self._response.close()
        super().close()
