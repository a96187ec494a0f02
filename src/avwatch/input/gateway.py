"""Protocols PyAV's own FFmpeg lacks (SRT, RIST in PyPI's wheels), through FFmpeg's CLI.

``ffmpeg -f data -i srt://... -c copy -f data pipe:1`` receives the stream and
hands its bytes on as they came — the ``data`` demuxer and muxer pass raw bytes
without parsing them (a file through it comes out byte-identical) — so the TS
analyser sees the sender's packets, continuity counters and PCRs, not a remux
of them. PyAV demuxes and decodes that as MPEG-TS, as usual; nothing is decoded
twice. The CLI comes from imageio-ffmpeg (its static FFmpeg carries libsrt and
librist) or from the system's PATH.

``GatewayPipe`` is the file object PyAV reads: each read waits at most
``read_timeout_s`` (a stream that stops fails like any other input), and
closing it stops the ffmpeg process. With ``batch_s``, a read that finds nothing
waiting first lets a batch arrive (input/batching.py): meanwhile the stream
waits in the pipe and in the protocol's own receive buffer (SRT's and RIST's
hold far more), so nothing is lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import subprocess
from functools import cache

from avwatch.input.batching import Batcher
from avwatch.input.tap import SequentialReader

__all__ = ["GatewayPipe", "gateway_ffmpeg"]

PIPE_BYTES = 1024 * 1024  # Linux's largest pipe for an unprivileged process: a batch fits


@cache
def gateway_ffmpeg(scheme: str) -> str | None:
    """An ffmpeg executable that speaks ``scheme``, or None."""
    candidates = []
    try:
        import imageio_ffmpeg

        candidates.append(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        pass
    if system := shutil.which("ffmpeg"):
        candidates.append(system)
    for exe in candidates:
        try:
            listed = subprocess.run(
                [exe, "-hide_banner", "-protocols"], capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        if scheme in listed.split():
            return str(exe)
    return None


class GatewayPipe(SequentialReader):
    def __init__(
        self,
        exe: str,
        url: str,
        open_timeout_s: float,
        read_timeout_s: float,
        batch_s: float = 0.0,
    ) -> None:
        self.url = url
        self.batcher = Batcher(batch_s)
        self.read_timeout_s = read_timeout_s
        self._timeout = open_timeout_s  # the first data may take as long as opening
        self.process = subprocess.Popen(
            [
                exe,
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-f",
                "data",  # raw bytes in, raw bytes out: the stream as it was sent
                "-i",
                url,
                "-map",
                "0",
                "-c",
                "copy",
                "-f",
                "data",
                "-flush_packets",
                "1",  # hand each read on at once: a live stream's latency
                "pipe:1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self._fd = self.process.stdout.fileno()
        # Under a lower system limit ffmpeg waits on the pipe; the source still does not.
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if not select.select([self._fd], [], [], 0)[0]:
            self.batcher.wait(self.position)  # caught up: let a batch arrive
        ready, _, _ = select.select([self._fd], [], [], self._timeout)
        if not ready:
            raise TimeoutError(f"{self.url}: no data for {self._timeout:g} s")
        self._timeout = self.read_timeout_s
        data = os.read(self._fd, len(buffer))
        if not data and self.process.poll() not in (None, 0):
            raise ConnectionError(f"{self.url}: {self._stderr() or 'the gateway stopped'}")
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)

    def _stderr(self) -> str:
        assert self.process.stderr is not None
        try:
            return self.process.stderr.read().decode(errors="replace").strip().splitlines()[-1]
        except (OSError, IndexError):
            return ""

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        super().close()
