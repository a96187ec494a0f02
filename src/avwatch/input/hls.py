"""HLS with TS segments, fetched by avwatch itself so the TS analyser sees every byte.

libavformat's HLS demuxer fetches the segments inside FFmpeg, out of reach of
the TR 101 290 analyser. ``HlsTsReader`` does that fetching instead: it reads
the playlist (the highest-bandwidth rendition of a master playlist), fetches
each segment once, in order, and hands the bytes on as one continuous
transport stream — the file object a ``TsTap`` and PyAV read. A live playlist
is reloaded until new segments appear; the stream ends after an
``#EXT-X-ENDLIST`` has been read through, or fails when nothing new comes
within the read timeout. Like libavformat, a live stream is joined three
segments from its end.

Only plain TS segments are taken: encrypted ones and fMP4 (``#EXT-X-MAP``)
raise ``NotPlainTs`` before anything is read, and the caller leaves such a
playlist to libavformat (decoded, not analysed). A playlist discontinuity
(``#EXT-X-DISCONTINUITY``: an ad break, an encoder restart) reaches the
analyser as the counter and clock jumps it is.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections import deque
from typing import Any

import m3u8

from avwatch.input.tap import Progress, SequentialReader, looks_like_ts, read_as_it_comes

__all__ = ["HlsTsReader", "NotPlainTs", "is_hls_url"]

LIVE_START_SEGMENTS = 3  # join a live playlist this many segments from its end
MAX_PLAYLIST_BYTES = 4 * 1024 * 1024


class NotPlainTs(Exception):
    """The playlist's segments are not plain MPEG-TS (encrypted, fMP4)."""


def is_hls_url(url: str) -> bool:
    path = url.split("?", 1)[0].lower()
    return path.startswith(("http://", "https://")) and path.endswith((".m3u8", ".m3u"))


class HlsTsReader(SequentialReader):
    def __init__(self, url: str, open_timeout_s: float, read_timeout_s: float) -> None:
        self.read_timeout_s = read_timeout_s
        self._timeout = open_timeout_s
        self._data = memoryview(b"")  # what is left of the current segment
        self._queue: deque[str] = deque()  # segment URIs fetched next, in order
        self._next_sequence: int | None = None
        self.url = self._rendition(url)
        playlist = self._playlist(self.url)
        plain = all(not key or key.method in (None, "NONE") for key in playlist.keys)
        if not plain or playlist.segment_map:
            raise NotPlainTs(f"{url}: segments are encrypted or fMP4")
        self._take(playlist, first=True)
        if not self._queue:
            raise NotPlainTs(f"{url}: the playlist lists no segments")
        self._data = memoryview(self._fetch(self._queue.popleft()))
        if not looks_like_ts(bytes(self._data[: 3 * 188])):
            raise NotPlainTs(f"{url}: segments are not MPEG-TS")

    # -- playlists --------------------------------------------------------------------
    def _get(self, url: str, limit: int | None = None) -> bytes:
        """The body (its first ``limit`` bytes), read as it comes: a server that trickles
        it is a stalled source (Progress), not a wait without end."""
        with urllib.request.urlopen(url, timeout=self._timeout) as response:
            return read_as_it_comes(response, Progress(url, self._timeout), limit)

    def _rendition(self, url: str) -> str:
        """The media playlist to follow: ``url`` itself, or a master's best rendition."""
        playlist = self._playlist(url)
        if not playlist.is_variant:
            return url
        variants = [p for p in playlist.playlists if p.absolute_uri]
        if not variants:
            raise NotPlainTs(f"{url}: a master playlist with no renditions")
        best = max(variants, key=lambda p: p.stream_info.bandwidth or 0)
        return str(best.absolute_uri)

    def _playlist(self, url: str) -> Any:
        text = self._get(url, MAX_PLAYLIST_BYTES).decode("utf-8", "replace")
        return m3u8.loads(text, url)

    def _take(self, playlist: Any, *, first: bool = False) -> None:
        """Queue the segments not seen yet (by media sequence number)."""
        sequence = int(playlist.media_sequence or 0)
        segments = list(playlist.segments)
        if first:
            skip = 0 if playlist.is_endlist else max(0, len(segments) - LIVE_START_SEGMENTS)
            self._next_sequence = sequence + skip
        assert self._next_sequence is not None
        for number, segment in enumerate(segments, start=sequence):
            if number >= self._next_sequence:
                self._queue.append(str(segment.absolute_uri))
                self._next_sequence = number + 1
        self._ended = bool(playlist.is_endlist)
        self._target_s = float(playlist.target_duration or 2)

    def _fetch(self, uri: str) -> bytes:
        data = self._get(uri)
        self._timeout = self.read_timeout_s
        return data

    def _next_segment(self) -> bytes:
        """The next segment's bytes, reloading a live playlist until one is listed;
        b"" at the end of a finished playlist."""
        waited_since = time.monotonic()
        while not self._queue:
            if self._ended:
                return b""
            if time.monotonic() - waited_since > self.read_timeout_s:
                raise TimeoutError(f"{self.url}: no new segment for {self.read_timeout_s:g} s")
            # RFC 8216 6.3.4: reload no sooner than half the target duration after
            # a reload that brought nothing new.
            time.sleep(min(self._target_s / 2, self.read_timeout_s))
            self._take(self._playlist(self.url))
        return self._fetch(self._queue.popleft())

    # -- the file object PyAV reads ----------------------------------------------------
    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            while not self._data:
                self._data = memoryview(self._next_segment())
                if not self._data and self._ended and not self._queue:
                    return 0
        except (urllib.error.URLError, OSError) as exc:
            if isinstance(exc, TimeoutError):
                raise
            raise ConnectionError(f"{self.url}: {getattr(exc, 'reason', exc)}") from exc
        n = min(len(buffer), len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        self.position += n
        return n
