"""A second audio track, and its removal from the programme, in a TS clip.

``track_loss`` at ``start``: the clip's audio is listed as English and carried
again on a second PID listed as French; at ``start`` a new PMT version drops the
French track and its packets stop (a PMT change, as when a language is lost
after a switch). The truth is the ``pmt_changed`` the structure detector logs.
"""

from __future__ import annotations

from pathlib import Path

from avwatch.lab.synth.spec import Defect
from avwatch.lab.synth.ts_edit import (
    EsEntry,
    first_pts_s,
    is_pmt,
    packets_of,
    pcr_s,
    pid_of,
    pmt_pid_of,
    rewrite_pmt,
)
from avwatch.lab.truth import TruthEvent

__all__ = ["SECOND_AUDIO_PID", "add_track_loss"]

SECOND_AUDIO_PID = 0x1200
AUDIO_TYPES = {0x03, 0x04, 0x0F, 0x11, 0x81, 0x87}


def _language(code: str) -> bytes:
    return bytes([0x0A, 4]) + code.encode("ascii") + b"\x00"  # ISO_639_language_descriptor


def add_track_loss(path: Path, defect: Defect) -> list[TruthEvent]:
    """Rewrite the TS clip at ``path`` (see the module); returns the truth."""
    data = path.read_bytes()
    packets = packets_of(data)
    pmt_pid, t0 = pmt_pid_of(packets), first_pts_s(data)
    audio_pid: int | None = None

    def both(entries: list[EsEntry]) -> list[EsEntry]:
        nonlocal audio_pid
        out = []
        for kind, pid, info in entries:
            if kind in AUDIO_TYPES and audio_pid in (None, pid):
                audio_pid = pid
                out.append((kind, pid, _language("eng") + info))
                out.append((kind, SECOND_AUDIO_PID, _language("fra") + info))
            else:
                out.append((kind, pid, info))
        return out

    def first_only(entries: list[EsEntry]) -> list[EsEntry]:
        return [e for e in both(entries) if e[1] != SECOND_AUDIO_PID]

    out, dropped = [], False
    for packet in packets:
        pcr = pcr_s(packet)
        dropped = dropped or (pcr is not None and pcr - t0 >= defect.start)
        if is_pmt(packet, pmt_pid):
            packet = rewrite_pmt(packet, first_only if dropped else both, new_version=dropped)
        out.append(packet)
        if audio_pid is not None and pid_of(packet) == audio_pid and not dropped:
            pid = bytes([(packet[1] & 0xE0) | (SECOND_AUDIO_PID >> 8), SECOND_AUDIO_PID & 0xFF])
            out.append(packet[:1] + pid + packet[3:])
    if audio_pid is None:
        raise ValueError("track_loss needs a clip with audio")
    path.write_bytes(b"".join(out))
    at = float(defect.start)
    return [{"type": "pmt_changed", "start": at, "end": at, "details": {}}]
