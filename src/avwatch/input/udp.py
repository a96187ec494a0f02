"""MPEG-TS over UDP or RTP with a socket of avwatch's own, so that the
transport-stream analyser sees every byte received (ETSI TR 101 290 on live
streams) on its way to the demuxer: one socket, one read, no second connection.
RTP (RFC 3550) carrying MPEG-TS (RFC 2250, payload type 33) has its header
taken off each datagram; any other payload is refused.

``UdpTsReader`` is a file object for PyAV (through ``TsTap``): it binds the
URL's port, joins a multicast group (``localaddr`` picks the interface,
``sources`` makes it source-specific), and hands on whole datagrams, as many
as have arrived, so the analyser gets large chunks. A read waits at most its
timeout: a stream that stops fails like any other input. With ``batch_s``, a
read that finds nothing waiting first lets a batch arrive (input/batching.py),
as much as the socket's buffer safely holds.
"""

from __future__ import annotations

import errno
import ipaddress
import select
import socket
import struct
import time
from urllib.parse import parse_qs, urlsplit

from avwatch.input.batching import Batcher
from avwatch.input.tap import SequentialReader

__all__ = ["UdpTsReader"]

RECEIVE_BUFFER = 4 * 1024 * 1024
DATAGRAM_MAX = 65536
RTP_HEADER = 12
RTP_MP2T = 33  # the static payload type of MPEG-TS (RFC 3551)
# Linux's constant; Python's socket module does not name it everywhere.
IP_ADD_SOURCE_MEMBERSHIP = getattr(socket, "IP_ADD_SOURCE_MEMBERSHIP", 39)


class UdpTsReader(SequentialReader):
    def __init__(
        self,
        url: str,
        open_timeout_s: float,
        read_timeout_s: float,
        options: dict[str, str] | None = None,
        *,
        rtp: bool = False,
        batch_s: float = 0.0,
    ) -> None:
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        query.update(options or {})
        if parts.port is None:
            raise ValueError(f"{url}: a UDP input needs a port")
        host = parts.hostname or "0.0.0.0"
        self.url = url
        self.rtp = rtp
        self.read_timeout_s = read_timeout_s
        self._timeout = open_timeout_s  # the first datagram may take as long as opening
        self._pending = b""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            group = ipaddress.ip_address(socket.gethostbyname(host))
            self.sock.bind((str(group), parts.port))
            if group.is_multicast:
                self._join(group, query.get("localaddr", "0.0.0.0"), query.get("sources"))
        except OSError:
            self.sock.close()
            raise
        # Linux reports twice the buffer asked for (the other half is its bookkeeping).
        capacity = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
        self.batcher = Batcher(batch_s, capacity)
        # When the last read emptied the socket: the next batch is counted from there,
        # even if a datagram came in the moment after.
        self._drained_at: float | None = None

    def _join(
        self,
        group: ipaddress.IPv4Address | ipaddress.IPv6Address,
        interface: str,
        sources: str | None,
    ) -> None:
        local = socket.inet_aton(interface)
        if not sources:
            membership = socket.inet_aton(str(group)) + local
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
            return
        for source in sources.split(","):  # source-specific multicast (RFC 4607)
            membership = struct.pack(
                "4s4s4s", socket.inet_aton(str(group)), local, socket.inet_aton(source.strip())
            )
            self.sock.setsockopt(socket.IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, membership)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        size = len(buffer)
        chunks = [self._pending] if self._pending else []
        have = len(self._pending)
        # A read returning nothing is the end of the stream to PyAV, so wait until
        # there is something to pass on: a datagram may carry nothing (not RTP, empty).
        drained_at, self._drained_at = self._drained_at, None
        if not have and (drained_at is not None or not self._waiting(0)):
            self.batcher.wait(self.position, since=drained_at)  # caught up: let a batch arrive
        deadline = time.monotonic() + self._timeout
        while not have:
            if not self._waiting(deadline - time.monotonic()):
                raise TimeoutError(f"{self.url}: no data for {self._timeout:g} s")
            have = self._receive(chunks, size)
        self._timeout = self.read_timeout_s
        # Whatever else has arrived, up to the buffer: big chunks for the analyser.
        if self._receive(chunks, size - have) < size - have:
            self._drained_at = time.monotonic()
        data = b"".join(chunks)
        taken, self._pending = data[:size], data[size:]
        buffer[: len(taken)] = taken
        self.position += len(taken)
        return len(taken)

    def _waiting(self, timeout: float) -> bool:
        """Whether a datagram is waiting, or arrives within ``timeout``."""
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        return bool(ready)

    def _receive(self, chunks: list[bytes], wanted: int) -> int:
        """Append the datagrams already waiting, up to ``wanted`` bytes of payload;
        returns how many bytes were added."""
        added = 0
        while added < wanted:
            try:
                datagram = self.sock.recv(DATAGRAM_MAX, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if self.rtp:
                datagram = self._rtp_payload(datagram)
            chunks.append(datagram)
            added += len(datagram)
        return added

    def _rtp_payload(self, datagram: bytes) -> bytes:
        """The MPEG-TS inside an RTP packet: past the fixed header, the CSRCs and any
        header extension, short of the padding."""
        if len(datagram) < RTP_HEADER or datagram[0] >> 6 != 2:
            return b""  # not RTP version 2: nothing to pass on
        if datagram[1] & 0x7F != RTP_MP2T:
            # An OSError, like every other failed read: the demuxer's callers report it.
            raise OSError(
                errno.EPROTONOSUPPORT,
                f"RTP payload type {datagram[1] & 0x7F}, not MPEG-TS ({RTP_MP2T})",
            )
        start = RTP_HEADER + 4 * (datagram[0] & 0x0F)
        if datagram[0] & 0x10 and len(datagram) >= start + 4:  # header extension
            start += 4 + 4 * int.from_bytes(datagram[start + 2 : start + 4], "big")
        end = len(datagram) - (datagram[-1] if datagram[0] & 0x20 else 0)
        return datagram[start:end]

    def close(self) -> None:
        self.sock.close()
        super().close()
