"""``avwatch demo``: live streams with defects on a schedule, and the service on them.

Each demo channel is a synthetic clip (made by ``avwatch.lab.synth``, defects at
known places) played in a loop as MPEG-TS in UDP datagrams on 127.0.0.1 at
real-time pace — a live source with no network needed. ``serve`` watches them
with an SQLite file, so within a minute a new user sees incidents open and
close through the API.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from pathlib import Path
from typing import Any

from avwatch.lab.scratch import partial_path
from avwatch.lab.synth import ClipSpec, Defect, make_clip
from avwatch.lab.tsloop import SeamlessLoop
from avwatch.service.config import ServiceConfig, StreamSpec

__all__ = ["CHANNELS", "UdpSender", "demo_config", "make_demo_clips"]


DATAGRAM = 7 * 188  # the usual MPEG-TS over UDP payload
CLIP_S = 30.0

# name -> ClipSpec fields of each 30 s loop, defects included
CHANNELS: dict[str, dict[str, Any]] = {
    "news": {"defects": [Defect("black", 5.0, 8.0), Defect("silence", 15.0, 19.0)]},
    "sport": {
        "defects": [Defect("freeze", 8.0, 12.0), Defect("silence", 20.0, 24.0, {"channel": 1})]
    },
    "movies": {"defects": [Defect("black", 12.0, 14.0), Defect("clipping", 22.0, 25.0)]},
    # A line-up pattern (flash and beep) whose sound slips 200 ms late for 15 s.
    "lineup": {
        "picture": "flash",
        "sound": "beeps",
        "defects": [Defect("av_offset", 10.0, 25.0, {"offset_ms": 200})],
    },
}


def make_demo_clips(
    directory: Path, size: tuple[int, int] = (480, 270), only: list[str] | None = None
) -> dict[str, Path]:
    """The demo channels' clips (made once, then reused); ``only`` these, if given."""
    directory.mkdir(parents=True, exist_ok=True)
    clips = {}
    for name, fields in CHANNELS.items():
        if only is not None and name not in only:
            continue
        path = directory / f"{name}.ts"
        if not path.exists():
            spec = ClipSpec(duration_s=CLIP_S, width=size[0], height=size[1], **fields)
            partial = partial_path(path)
            make_clip(partial, spec)
            partial.rename(path)
        clips[name] = path
    return clips


class UdpSender:
    """Plays a TS clip of ``seconds`` into UDP datagrams at its own bitrate, looping
    seamlessly (one unbroken stream: see ``SeamlessLoop``), until stopped."""

    def __init__(
        self,
        path: Path,
        port: int,
        *,
        seconds: float,
        host: str = "127.0.0.1",
        sock: socket.socket | None = None,
    ) -> None:
        """``sock``: send from this socket (shared by many senders), else from one of
        its own. A socket bound before the receivers' ports are chosen cannot take one
        of them as its own ephemeral port."""
        self.loop = SeamlessLoop(path.read_bytes(), seconds)
        self.sock = sock
        self.seconds = seconds
        self.due = self.loop.send_times(DATAGRAM)  # paced by the clip's PCR, as a playout
        self.address = (host, port)
        self.paused = threading.Event()  # set: send nothing (an input that goes dark)
        self.laps_started: list[float] = []  # wall clock of each pass's first datagram
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"udp-{port}", daemon=True)

    def start(self) -> UdpSender:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        if self.sock is not None:
            self._send(self.sock)
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            self._send(sock)

    def _send(self, sock: socket.socket) -> None:
        lap_start = time.monotonic()
        for lap in itertools.count():
            data = self.loop.lap(lap)
            self.laps_started.append(time.time())
            for pos, due in zip(range(0, len(data), DATAGRAM), self.due, strict=True):
                delay = lap_start + due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -1.0:  # fell far behind (a stalled machine): do not burst
                    lap_start -= delay
                if self._stop.is_set():
                    return
                if not self.paused.is_set():
                    sock.sendto(data[pos : pos + DATAGRAM], self.address)
            lap_start += self.seconds


def demo_config(
    ports: dict[str, int], database: str, token: str, titles: dict[str, str] | None = None
) -> ServiceConfig:
    titles = titles or {}
    return ServiceConfig(
        database=database,
        api_token=token,
        streams=[
            StreamSpec(id=name, url=f"udp://127.0.0.1:{port}", name=titles.get(name, name.title()))
            for name, port in ports.items()
        ],
    )
