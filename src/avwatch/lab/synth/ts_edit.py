"""Small edits of a TS clip's packets, for test media the muxer cannot make: reading
its PAT, PMT, first PTS and PCRs, and rewriting a PMT's elementary streams."""

from __future__ import annotations

from collections.abc import Callable

from avwatch.transport.analyser import TS_PACKET
from avwatch.transport.crc import crc32_mpeg

__all__ = [
    "EsEntry",
    "first_pts_s",
    "is_pmt",
    "packets_of",
    "payload_of",
    "pcr_s",
    "pid_of",
    "pmt_pid_of",
    "rewrite_pmt",
]

EsEntry = tuple[int, int, bytes]  # stream_type, PID, ES_info descriptors


def packets_of(data: bytes) -> list[bytes]:
    return [data[i : i + TS_PACKET] for i in range(0, len(data) - TS_PACKET + 1, TS_PACKET)]


def pid_of(packet: bytes) -> int:
    return ((packet[1] & 0x1F) << 8) | packet[2]


def payload_of(packet: bytes) -> bytes:
    start = 4 + (1 + packet[4] if packet[3] & 0x20 else 0)
    return packet[start:] if packet[3] & 0x10 else b""


def pmt_pid_of(packets: list[bytes]) -> int:
    for packet in packets:
        if pid_of(packet) == 0 and packet[1] & 0x40:
            section = payload_of(packet)[1 + payload_of(packet)[0] :]
            return int.from_bytes(section[10:12], "big") & 0x1FFF
    raise ValueError("no PAT in the clip")


def first_pts_s(data: bytes) -> float:
    """The first video PES's PTS, in seconds: media time 0 (the synthetic clips have
    no B-frames, so it is the first picture shown)."""
    for packet in packets_of(data):
        payload = payload_of(packet)
        if packet[1] & 0x40 and payload[:3] == b"\x00\x00\x01" and 0xE0 <= payload[3] <= 0xEF:
            p = payload[9:14]
            ticks = (
                ((p[0] >> 1) & 0x07) << 30 | p[1] << 22 | (p[2] >> 1) << 15 | p[3] << 7 | p[4] >> 1
            )
            return ticks / 90_000
    raise ValueError("no video PES in the clip")


def pcr_s(packet: bytes) -> float | None:
    if not (packet[3] & 0x20 and packet[4] and packet[5] & 0x10):
        return None
    raw = packet[6:12]
    base = int.from_bytes(raw[:5], "big") >> 7
    return base / 90_000


def is_pmt(packet: bytes, pmt_pid: int) -> bool:
    """Does ``packet`` start a PMT section (in the one-packet form the muxer writes)?"""
    return pid_of(packet) == pmt_pid and bool(packet[1] & 0x40) and not packet[3] & 0x20


def rewrite_pmt(
    packet: bytes, change: Callable[[list[EsEntry]], list[EsEntry]], *, new_version: bool = False
) -> bytes:
    """A PMT packet (one section, no adaptation field) with its elementary streams
    changed by ``change``; ``new_version`` steps the version_number."""
    start = 5 + packet[4]  # after the pointer_field
    length = ((packet[start + 1] & 0x0F) << 8) | packet[start + 2]
    section = packet[start : start + 3 + length - 4]
    info_length = int.from_bytes(section[10:12], "big") & 0x0FFF
    head, k = bytearray(section[: 12 + info_length]), 12 + info_length
    entries: list[EsEntry] = []
    while k + 5 <= len(section):
        es_info = int.from_bytes(section[k + 3 : k + 5], "big") & 0x0FFF
        pid = int.from_bytes(section[k + 1 : k + 3], "big") & 0x1FFF
        entries.append((section[k], pid, section[k + 5 : k + 5 + es_info]))
        k += 5 + es_info
    if new_version:
        head[5] = (head[5] & 0xC1) | (((((head[5] >> 1) & 0x1F) + 1) & 0x1F) << 1)
    body = bytes(head) + b"".join(
        bytes([kind, 0xE0 | (pid >> 8), pid & 0xFF, 0xF0 | (len(info) >> 8), len(info) & 0xFF])
        + info
        for kind, pid, info in change(entries)
    )
    new_length = len(body) - 3 + 4
    body = body[:1] + bytes([(body[1] & 0xF0) | (new_length >> 8), new_length & 0xFF]) + body[3:]
    body += crc32_mpeg(body).to_bytes(4, "big")
    out = (packet[:start] + body).ljust(TS_PACKET, b"\xff")
    assert len(out) == TS_PACKET, "the PMT no longer fits its packet"
    return out
