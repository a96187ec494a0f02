"""A TS clip played over and over as one unbroken stream (demo and test sources).

Sent as it is, each new pass of a clip is a transport defect: continuity
counters restart, PCR, PTS and DTS jump back. ``SeamlessLoop`` rewrites each
pass so that it carries on from the one before: counters continue per PID,
and every clock moves on by the clip's duration. A monitor watching it then
sees only the defects put into the clip. Audio frames that would overlap the
next pass are left out, and PCR-only packets bridge the seam so that PCRs stay
20 ms apart. SCTE-35 cues move on too, by their ``pts_adjustment``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avwatch.transport.analyser import TS_PACKET
from avwatch.transport.crc import crc32_mpeg

__all__ = ["SeamlessLoop"]

PTS_WRAP = 1 << 33
SPLICE_INFO = 0xFC  # the table_id of SCTE-35 sections
PCR_STEP = 1800  # 20 ms on the 90 kHz clock, half TR 101 290's 40 ms limit


@dataclass(frozen=True)
class _Spots:
    pcr: list[int]  # offsets of 6-byte PCR fields
    timestamps: list[int]  # offsets of 5-byte PTS/DTS fields
    cc: list[tuple[int, int]]  # (offset of the CC byte, PID) of packets with payload
    payload_packets: dict[int, int]  # PID -> packets with payload in one pass
    splices: list[int]  # offsets of SCTE-35 splice_info_sections (whole in one packet)


def _find(data: bytes) -> _Spots:
    pcr, timestamps, cc, splices = [], [], [], []
    payload_packets: dict[int, int] = {}
    for pos in range(0, len(data) - TS_PACKET + 1, TS_PACKET):
        pid = ((data[pos + 1] & 0x1F) << 8) | data[pos + 2]
        afc = (data[pos + 3] >> 4) & 0x3
        start = pos + 4
        if afc & 2:
            af_len = data[pos + 4]
            if af_len and data[pos + 5] & 0x10:
                pcr.append(pos + 6)
            start += 1 + af_len
        if not afc & 1 or pid == 0x1FFF:
            continue
        cc.append((pos + 3, pid))
        payload_packets[pid] = payload_packets.get(pid, 0) + 1
        if data[pos + 1] & 0x40 and data[start : start + 3] != b"\x00\x00\x01":
            at = start + 1 + data[start]  # after the pointer_field
            length = 3 + (((data[at + 1] & 0x0F) << 8) | data[at + 2])
            if data[at] == SPLICE_INFO and at + length <= pos + TS_PACKET:
                splices.append(at)
        pes = data[start : start + 19]
        if data[pos + 1] & 0x40 and pes[:3] == b"\x00\x00\x01" and len(pes) >= 14:
            flags = pes[7] >> 6
            if flags & 2:
                timestamps.append(start + 9)
            if flags == 3 and len(pes) >= 19:
                timestamps.append(start + 14)
    return _Spots(pcr, timestamps, cc, payload_packets, splices)


def _read_ts(b: bytearray, at: int) -> int:
    return (
        ((b[at] >> 1) & 0x07) << 30
        | b[at + 1] << 22
        | (b[at + 2] >> 1) << 15
        | b[at + 3] << 7
        | b[at + 4] >> 1
    )


def _write_ts(b: bytearray, at: int, value: int) -> None:
    b[at] = (b[at] & 0xF0) | ((value >> 29) & 0x0E) | 1
    b[at + 1] = (value >> 22) & 0xFF
    b[at + 2] = ((value >> 14) & 0xFE) | 1
    b[at + 3] = (value >> 7) & 0xFF
    b[at + 4] = ((value << 1) & 0xFE) | 1


class SeamlessLoop:
    """Pass ``k`` of ``data`` (a clip of ``seconds``), rewritten to follow pass ``k - 1``."""

    def __init__(self, data: bytes, seconds: float) -> None:
        self.ticks = round(seconds * 90_000)  # each pass moves every clock on by this
        self.data = _trim(data[: len(data) // TS_PACKET * TS_PACKET], self.ticks)
        self._spots = _find(self.data)
        self._bridge = self._pcr_bridge()

    def _pcr_bridge(self) -> list[tuple[int, int]]:
        """(PID, PCR base offset from the first PCR) of PCR-only packets that close the
        gap between a pass's last PCR and the next pass's first to 20 ms steps."""
        if not self._spots.pcr:
            return []
        buffer = bytearray(self.data)
        first, last = (_read_pcr(buffer, at) for at in (self._spots.pcr[0], self._spots.pcr[-1]))
        at = self._spots.pcr[-1]
        pid = ((buffer[at - 5] & 0x1F) << 8) | buffer[at - 4]
        gap = self.ticks - (last - first)
        steps = max(1, -(-gap // PCR_STEP))
        return [(pid, last - first + gap * i // steps) for i in range(1, steps)]

    def send_times(self, chunk: int) -> list[float]:
        """When each ``chunk`` bytes of a pass are due, in seconds from the pass's start,
        by the PCRs around them: a playout paces a stream by its clock, so a black
        stretch that codes to little is not sent ahead of its time."""
        size = len(self.data) + len(self._bridge) * TS_PACKET
        buffer = bytearray(self.data)
        if not self._spots.pcr:
            return [self.ticks / 90_000 * pos / size for pos in range(0, size, chunk)]
        first = _read_pcr(buffer, self._spots.pcr[0])
        positions = [at - 6 for at in self._spots.pcr]  # each PCR packet's start
        ticks = [(_read_pcr(buffer, at) - first) % PTS_WRAP for at in self._spots.pcr]
        for n, (_, offset) in enumerate(self._bridge):
            positions.append(len(self.data) + n * TS_PACKET)
            ticks.append(offset)
        positions.append(size)  # where the next pass's first PCR is due
        ticks.append(self.ticks)
        due = np.interp(np.arange(0, size, chunk), positions, np.asarray(ticks) / 90_000)
        return [float(t) for t in due]

    def lap(self, k: int) -> bytes:
        out = bytearray(self.data)
        shift = k * self.ticks
        for at in self._spots.pcr:
            base = (_read_pcr(out, at) + shift) % PTS_WRAP
            out[at : at + 4] = (base >> 1).to_bytes(4, "big")
            out[at + 4] = (out[at + 4] & 0x7F) | ((base & 1) << 7)
        for at in self._spots.timestamps:
            _write_ts(out, at, (_read_ts(out, at) + shift) % PTS_WRAP)
        for at in self._spots.splices:  # cues: their splice times move on by pts_adjustment
            _shift_splice(out, at, shift)
        for at, pid in self._spots.cc:
            step = k * self._spots.payload_packets[pid]
            out[at] = (out[at] & 0xF0) | ((out[at] & 0x0F) + step) % 16
        first = _read_pcr(bytearray(self.data), self._spots.pcr[0]) if self._spots.pcr else 0
        for pid, offset in self._bridge:
            out += _pcr_packet(pid, (first + offset + shift) % PTS_WRAP)
        return bytes(out)


def _shift_splice(b: bytearray, at: int, shift: int) -> None:
    """Add ``shift`` to a splice_info_section's 33-bit pts_adjustment; a new CRC (a
    wrong one where it was wrong: a spoilt cue stays spoilt)."""
    end = at + 3 + (((b[at + 1] & 0x0F) << 8) | b[at + 2])
    spoilt = crc32_mpeg(bytes(b[at : end - 4])) != int.from_bytes(b[end - 4 : end], "big")
    adjustment = ((b[at + 4] & 0x01) << 32 | int.from_bytes(b[at + 5 : at + 9], "big")) + shift
    adjustment %= PTS_WRAP
    b[at + 4] = (b[at + 4] & 0xFE) | (adjustment >> 32)
    b[at + 5 : at + 9] = (adjustment & 0xFFFFFFFF).to_bytes(4, "big")
    b[end - 4 : end] = (crc32_mpeg(bytes(b[at : end - 4])) ^ spoilt).to_bytes(4, "big")


def _trim(data: bytes, ticks: int) -> bytes:
    """Leave out every PES unit that starts ``ticks`` or more after its PID's first: audio
    frames rarely fit a clip's length exactly, and the tail would overlap the next pass."""
    first: dict[int, int] = {}
    dropping: set[int] = set()
    kept = []
    for pos in range(0, len(data), TS_PACKET):
        packet = data[pos : pos + TS_PACKET]
        pid = ((packet[1] & 0x1F) << 8) | packet[2]
        afc = (packet[3] >> 4) & 0x3
        start = 4 + (1 + packet[4] if afc & 2 else 0)
        pes = packet[start : start + 14]
        if packet[1] & 0x40 and afc & 1 and pes[:3] == b"\x00\x00\x01" and pes[7] & 0x80:
            pts = _read_ts(bytearray(pes), 9)
            first.setdefault(pid, pts)
            if (pts - first[pid]) % PTS_WRAP >= ticks:
                dropping.add(pid)
            else:
                dropping.discard(pid)
        if pid not in dropping:
            kept.append(packet)
    return b"".join(kept)


def _read_pcr(b: bytearray, at: int) -> int:
    """The 33-bit PCR base (90 kHz) at ``at``."""
    return b[at] << 25 | b[at + 1] << 17 | b[at + 2] << 9 | b[at + 3] << 1 | b[at + 4] >> 7


def _pcr_packet(pid: int, base: int) -> bytes:
    """A packet with only an adaptation field carrying a PCR: no payload, so it does not
    step the PID's continuity counter."""
    header = bytes([0x47, (pid >> 8) & 0x1F, pid & 0xFF, 0x20])
    pcr = (base >> 1).to_bytes(4, "big") + bytes([((base & 1) << 7) | 0x7E, 0x00])
    return header + bytes([183, 0x10]) + pcr + b"\xff" * (TS_PACKET - 12)
