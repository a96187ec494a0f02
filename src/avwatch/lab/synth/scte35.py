"""SCTE-35 cues put into a synthetic TS clip, with their exact truth.

``ad_break`` defects become splice_insert cues: a cue-out ``PREROLL_S`` before
the break (splice time = its start, break duration = its length, no auto
return) and a cue-in ``PREROLL_S`` before it ends (or ``overrun_s`` later).
``crc_error=1`` spoils the cue-out's CRC (the cue is lost, so the cue-in finds
no break open); ``late=1`` sends the cue-out a second after its splice time.

The sections are written here, bit by bit after SCTE-35 2023 section 9, so the
engine's reader (threefive) is checked against an encoder it does not share.
The clip's PMT gains an SCTE-35 PID (stream_type 0x86, registration "CUEI"),
and each cue's packet goes in just before the first PCR at or after the media
time it is sent at.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avwatch.lab.synth.spec import Defect
from avwatch.lab.synth.ts_edit import (
    first_pts_s,
    is_pmt,
    packets_of,
    pcr_s,
    pmt_pid_of,
    rewrite_pmt,
)
from avwatch.lab.truth import TruthEvent
from avwatch.transport.analyser import TS_PACKET
from avwatch.transport.crc import crc32_mpeg

__all__ = ["PREROLL_S", "SCTE35_PID", "Cue", "add_ad_breaks", "splice_insert"]

SCTE35_PID = 0x1F0
PREROLL_S = 4.0  # cues go this long before they take effect (SCTE 67 asks for 4 s or more)
LATE_S = 1.0
OVERRUN_TOLERANCE_S = 1.0  # as the scte35 detector's default


@dataclass(frozen=True)
class Cue:
    sent_at: float  # media seconds
    section: bytes


def splice_insert(
    event_id: int,
    *,
    out: bool,
    pts_s: float,
    duration_s: float | None = None,
    auto_return: bool = False,
    pts_adjustment_s: float = 0.0,
) -> bytes:
    """A splice_info_section carrying one splice_insert, program splice at ``pts_s``."""
    bits = _Bits()
    bits.put(event_id, 32)
    bits.put(0, 1)  # splice_event_cancel_indicator
    bits.put(0x7F, 7)
    bits.put(out, 1)
    bits.put(1, 1)  # program_splice_flag
    bits.put(duration_s is not None, 1)
    bits.put(0, 1)  # splice_immediate_flag
    bits.put(1, 1)  # event_id_compliance_flag
    bits.put(0x7, 3)
    bits.put(1, 1)  # splice_time: time_specified_flag
    bits.put(0x3F, 6)
    bits.put(_ticks(pts_s), 33)
    if duration_s is not None:
        bits.put(auto_return, 1)
        bits.put(0x3F, 6)
        bits.put(round(duration_s * 90_000), 33)
    bits.put(0, 16)  # unique_program_id
    bits.put(0, 8)  # avail_num
    bits.put(0, 8)  # avails_expected
    return _section(0x05, bits.bytes(), pts_adjustment_s)


def _section(command_type: int, command: bytes, pts_adjustment_s: float) -> bytes:
    body = _Bits()
    body.put(0, 8)  # protocol_version
    body.put(0, 1)  # encrypted_packet
    body.put(0, 6)  # encryption_algorithm
    body.put(_ticks(pts_adjustment_s), 33)
    body.put(0xFF, 8)  # cw_index
    body.put(0xFFF, 12)  # tier
    body.put(len(command), 12)
    body.put(command_type, 8)
    data = body.bytes() + command + b"\x00\x00"  # descriptor_loop_length 0
    length = len(data) + 4  # and the CRC
    head = bytes([0xFC, 0x30 | (length >> 8), length & 0xFF])  # sap_type 3: not specified
    section = head + data
    return section + crc32_mpeg(section).to_bytes(4, "big")


def _ticks(seconds: float) -> int:
    return round(seconds * 90_000) % (1 << 33)


class _Bits:
    def __init__(self) -> None:
        self.value, self.count = 0, 0

    def put(self, value: int | bool, width: int) -> None:
        self.value = (self.value << width) | (int(value) & ((1 << width) - 1))
        self.count += width

    def bytes(self) -> bytes:
        assert self.count % 8 == 0, self.count
        return self.value.to_bytes(self.count // 8, "big")


def cues_and_truth(defects: list[Defect], t0: float) -> tuple[list[Cue], list[TruthEvent]]:
    """The cues for ``ad_break`` defects (splice times on the clock of ``t0``, the PTS
    of the first picture, in seconds) and the events the scte35 detector must find."""
    cues: list[Cue] = []
    truth: list[TruthEvent] = []
    for number, defect in enumerate(defects, 1):
        overrun = float(defect.params.get("overrun_s", 0.0))
        back_at = float(defect.end) + overrun
        out_sent = defect.start + LATE_S if defect.params.get("late") else defect.start - PREROLL_S
        out_sent = max(0.1, out_sent)
        cue_out = splice_insert(
            number, out=True, pts_s=t0 + defect.start, duration_s=defect.end - defect.start
        )
        cue_in = splice_insert(number, out=False, pts_s=t0 + back_at)
        in_sent = max(out_sent + 0.5, back_at - PREROLL_S)
        broken = bool(defect.params.get("crc_error"))
        if broken:
            cue_out = cue_out[:-1] + bytes([cue_out[-1] ^ 0xFF])
            truth.append(_instant("scte35_crc_error", out_sent))
            truth.append(_instant("scte35_unmatched_cue_in", in_sent))
        else:
            truth.append(_instant("scte35_cue", out_sent))
            if defect.params.get("late"):
                truth.append(_instant("scte35_late_cue", out_sent))
            if overrun > OVERRUN_TOLERANCE_S:
                truth.append(
                    {
                        "type": "ad_break_overrun",
                        "start": float(defect.end),
                        "end": back_at,
                        "details": {},
                    }
                )
        truth.append(_instant("scte35_cue", in_sent))
        cues += [Cue(out_sent, cue_out), Cue(in_sent, cue_in)]
    return cues, truth


def _instant(type_: str, at: float) -> TruthEvent:
    return {"type": type_, "start": at, "end": at, "details": {}}


def add_ad_breaks(path: Path, defects: list[Defect]) -> list[TruthEvent]:
    """Put the cues of ``defects`` into the TS clip at ``path``; returns their truth."""
    data = path.read_bytes()
    t0 = first_pts_s(data)
    cues, truth = cues_and_truth(defects, t0)
    path.write_bytes(_insert(_with_scte35_pid(data), cues, t0))
    return truth


def _with_scte35_pid(data: bytes) -> list[bytes]:
    """The clip's packets, each PMT rewritten to list the SCTE-35 PID."""
    packets = packets_of(data)
    pmt_pid = pmt_pid_of(packets)
    cues = (0x86, SCTE35_PID, bytes([0x05, 4]) + b"CUEI")  # registration_descriptor
    return [
        rewrite_pmt(p, lambda entries: [*entries, cues]) if is_pmt(p, pmt_pid) else p
        for p in packets
    ]


def _insert(packets: list[bytes], cues: list[Cue], t0: float) -> bytes:
    """Each cue's packet before the first PCR at or after its media time."""
    pending = sorted(cues, key=lambda c: c.sent_at)
    out: list[bytes] = []
    counter = 0
    for packet in packets:
        pcr = pcr_s(packet)
        while pending and pcr is not None and pcr - t0 >= pending[0].sent_at:
            out.append(_cue_packet(pending.pop(0).section, counter))
            counter = (counter + 1) % 16
        out.append(packet)
    if pending:
        raise ValueError(f"cue at {pending[0].sent_at:g} s is past the clip's end")
    return b"".join(out)


def _cue_packet(section: bytes, counter: int) -> bytes:
    header = bytes([0x47, 0x40 | (SCTE35_PID >> 8), SCTE35_PID & 0xFF, 0x10 | counter])
    packet = header + b"\x00" + section
    assert len(packet) <= TS_PACKET, "a cue longer than one packet"
    return packet.ljust(TS_PACKET, b"\xff")
