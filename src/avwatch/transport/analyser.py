"""MPEG-TS analysis after ETSI TR 101 290, on the raw 188-byte packets.

``TsAnalyzer.feed(bytes)`` takes the input as it arrives (any chunking) and
keeps per-PID counters and a list of ``TsEvent``. Headers of a whole chunk are
parsed at once with numpy; Python touches only the packets that need it (PSI,
PCR, PES starts, errors), so the analyser keeps up with line rate.

Checks: first priority — TS_sync_loss, Sync_byte_error, PAT_error,
Continuity_count_error, PMT_error, PID_error; second priority —
Transport_error, CRC_error, PCR_repetition_error, PCR_discontinuity_indicator_
error, PCR_accuracy_error (on constant-bitrate streams, by byte position),
PTS_error. Not yet: the third-priority checks.

Times are seconds of the 27 MHz / 90 kHz system clock, the same base as PTS, so
the pipeline can put them on its media timeline. A finding on a packet is held
until the next PCR: if that PCR jumped (over 100 ms: the signal was cut,
packets were lost), the finding is dated by it — the stream resumed within one
PCR interval of it — else by the PCR before the packet. ``finish()`` hands on
what is held at the end of the input. A PAT or
PMT that is late gives one error per 0.5 s it overran, each dated when it fell
due, whether the gap is seen when the table returns or by the check after each
read.
"""

from __future__ import annotations

import functools
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from avwatch.transport.crc import crc32_mpeg
from avwatch.transport.programme import pmt_streams, sdt_services
from avwatch.transport.scte35 import Scte35Error, read_cue
from avwatch.transport.sections import SectionAssembler

__all__ = ["NEWS", "TS_PACKET", "TsAnalyzer", "TsEvent", "crc32_mpeg"]

TS_PACKET = 188
SYNC = 0x47
PAT_PID, NULL_PID = 0x0000, 0x1FFF
LEARNING_RUN = 32  # packets parsed at once while the programme's tables are not yet known
PCR_WRAP = (1 << 33) * 300

IntArray = npt.NDArray[np.integer[Any]]
BoolArray = npt.NDArray[np.bool_]

# TR 101 290 limits, in seconds.
PSI_INTERVAL_S = 0.5  # PAT and PMT at least every 0.5 s
PCR_INTERVAL_S = 0.040  # PCR repetition
PCR_JUMP_S = 0.100  # PCR discontinuity
PCR_ACCURACY_TICKS = 13.5  # PCR accuracy: +-500 ns of the 27 MHz clock
PCR_FIT_POINTS = 16  # the PCRs before each one that its accuracy is judged against
PTS_INTERVAL_S = 0.700  # PTS repetition
PID_TIMEOUT_S = 5.0  # a referenced PID not seen for this long (user-defined in the spec)


@dataclass
class TsEvent:
    """One TR 101 290 finding: ``type`` is a report event type (``ts_cc_error``...)."""

    type: str
    time: float | None  # seconds of system clock (last PCR), None before the first PCR
    packet: int  # index of the packet in the stream
    pid: int | None
    details: dict[str, Any] = field(default_factory=dict)


PID_COUNT = 1 << 13
SCTE35_STREAM_TYPE = 0x86
SDT_PID, SDT_ACTUAL = 0x0011, 0x42
# What the analyser read, handed on for detectors: news, not errors.
NEWS = frozenset({"scte35_cue", "programme", "service"})


@functools.lru_cache(maxsize=64)
def _pid_table(pids: frozenset[int]) -> np.ndarray[Any, Any]:
    """A lookup by PID: indexing it with a chunk's PIDs tells which are in ``pids``
    (np.isin sorts both sides on every call)."""
    table = np.zeros(PID_COUNT, dtype=bool)
    table[list(pids)] = True
    table.flags.writeable = False  # shared by every analyser
    return table


def _section_of(packet: bytes) -> bytes | None:
    """The section a PAT or PMT packet starts, as ``_section`` keeps it (None: none)."""
    payload_start = 4 + (1 + packet[4] if packet[3] & 0x20 else 0)
    if not packet[3] & 0x10 or payload_start >= TS_PACKET:
        return None
    payload = packet[payload_start:]
    section = payload[1 + payload[0] :]
    if len(section) < 3:
        return None
    return section[: 3 + (((section[1] & 0x0F) << 8) | section[2])]


@dataclass
class PidStats:
    packets: int = 0
    cc_errors: int = 0
    tei: int = 0
    last_cc: int = -1
    last_pcr: int | None = None  # 27 MHz ticks
    last_pts: int | None = None
    last_pts_clock: float | None = None
    last_seen_clock: float | None = None
    kind: str = ""


class PcrAccuracy:
    """PCR_accuracy_error: each PCR against the line through the PCRs before it,
    27 MHz ticks by packet index. In a constant-bitrate stream a PCR's value is
    fixed by its byte position, so the line is exact and any PCR off it by more
    than 500 ns is inaccurate (arrival jitter on the network does not matter).
    A variable-bitrate stream has no such line: while the PCRs before stray
    from their own fit by more than the limit (median), nothing is judged.
    """

    def __init__(self) -> None:
        self.clock = 0  # PCR ticks, unwrapped: the sum of the steps between PCRs
        self.points: deque[tuple[int, int]] = deque(maxlen=PCR_FIT_POINTS)
        self.line: tuple[float, float, float] | None = None  # through (x0, y0), slope
        self.refit_in = 0
        self.judged = 0
        self.worst_ns = 0.0

    def reset(self) -> None:
        """A discontinuity: the next PCRs start a new line."""
        self.points.clear()
        self.line, self.refit_in = None, 0

    def error_ns(self, index: int, step: int) -> float | None:
        """The distance in ns from the line of the PCR at packet ``index``, ``step``
        ticks after the one before, when that exceeds 500 ns; else None (also when the
        stream is not constant-bitrate or the line not yet known)."""
        self.clock += step
        ticks = self.clock
        if len(self.points) < PCR_FIT_POINTS:
            self.points.append((index, ticks))
            return None
        if self.refit_in == 0:
            # The line is fitted again every PCR_FIT_POINTS PCRs: a constant-bitrate
            # stream stays on it, and a fit per PCR would double the analyser's cost.
            self.line = _constant_rate_line(self.points)
            self.refit_in = PCR_FIT_POINTS
        self.refit_in -= 1
        if self.line is None:
            self.points.append((index, ticks))
            return None  # not constant bitrate
        x0, y0, slope = self.line
        self.judged += 1
        off = ticks - (y0 + slope * (index - x0))
        off_ns = off / 27e6 * 1e9
        self.worst_ns = max(self.worst_ns, abs(off_ns))
        if abs(off) > PCR_ACCURACY_TICKS:
            return round(off_ns, 1)  # kept off the line it is judged by
        self.points.append((index, ticks))
        return None


def _constant_rate_line(points: deque[tuple[int, int]]) -> tuple[float, float, float] | None:
    """(x0, y0, slope) of the least-squares line through (packet index, PCR ticks), or
    None when the PCRs stray from it by more than the accuracy limit (median)."""
    xy = np.array(points, dtype=np.float64)
    x, y = xy[:, 0] - xy[0, 0], xy[:, 1] - xy[0, 1]
    mx, my = x.mean(), y.mean()
    slope = float(((x - mx) * (y - my)).sum() / max(float(((x - mx) ** 2).sum()), 1e-9))
    residual = y - (my + slope * (x - mx))
    if float(np.median(np.abs(residual))) > PCR_ACCURACY_TICKS:
        return None
    return float(xy[0, 0] + mx), float(xy[0, 1] + my), slope


class TsAnalyzer:
    def __init__(self) -> None:
        self.buffer = b""
        self.packet_index = 0
        self.pids: dict[int, PidStats] = {}
        self.counts: Counter[str] = Counter()
        self.events: list[TsEvent] = []
        self.held: list[TsEvent] = []  # findings since the latest PCR, dated by the next
        self.clock: float | None = None  # seconds, from the latest PCR
        self.first_clock: float | None = None
        self.pcr_pid: int | None = None
        self.pcr_accuracy = PcrAccuracy()
        self.pmt_pids: set[int] = set()
        self.es_pids: dict[int, int] = {}  # pid -> stream_type
        self.scte35: dict[int, SectionAssembler] = {}  # SCTE-35 PIDs (stream_type 0x86)
        self.programmes: dict[int, list[dict[str, Any]]] = {}  # PMT PID -> its streams
        self.sdt = SectionAssembler()
        self.table_last: dict[int, float] = {}  # PAT/PMT PID -> clock when last seen
        self.table_reported: dict[int, float] = {}  # PID -> the overrun already reported
        self.table_body: dict[int, bytes] = {}  # PID -> its latest good PAT/PMT section
        self.in_sync = True
        self.bad_sync_run = 0

    # -- input ------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        data = self.buffer + data
        pos = 0
        while len(data) - pos >= TS_PACKET:
            if data[pos] != SYNC:
                resumed = self._bad_sync(data, pos)
                if resumed is None:
                    break  # need more data to decide
                pos = resumed
                continue
            # Take the run of packets that are in sync, parse them at once. Until the
            # PAT and PMT are known, in small runs: a chunk is sifted for the PIDs known
            # at its start, and at a low bitrate one large read holds seconds of tables.
            end = pos + (len(data) - pos) // TS_PACKET * TS_PACKET
            if not (self.pmt_pids and self.es_pids):
                end = min(end, pos + LEARNING_RUN * TS_PACKET)
            chunk = np.frombuffer(data, np.uint8, count=end - pos, offset=pos).reshape(
                -1, TS_PACKET
            )
            good = chunk[:, 0] == SYNC
            bad = np.flatnonzero(~good)
            run = len(chunk) if not len(bad) else int(bad[0])
            run = self._until_new_tables(chunk[:run], data, pos)
            self._packets(chunk[:run], data, pos)
            pos += run * TS_PACKET
        self.buffer = data[pos:]

    def _until_new_tables(self, chunk: np.ndarray[Any, Any], data: bytes, base: int) -> int:
        """How many of ``chunk``'s packets to take at once: up to and including the
        first PAT or PMT that differs from the one read before. The packets after it
        are sifted by the PIDs it names (a cue PID's first cue may follow at once)."""
        pid = ((chunk[:, 1].astype(np.int32) & 0x1F) << 8) | chunk[:, 2]
        tables = pid == PAT_PID
        if self.pmt_pids:
            tables |= _pid_table(frozenset(self.pmt_pids))[pid]
        for i in np.flatnonzero(tables & ((chunk[:, 1] & 0x40) != 0)).tolist():
            start = base + i * TS_PACKET
            packet = data[start : start + TS_PACKET]
            table_pid = ((packet[1] & 0x1F) << 8) | packet[2]
            if _section_of(packet) != self.table_body.get(table_pid):
                return i + 1
        return len(chunk)

    def _bad_sync(self, data: bytes, pos: int) -> int | None:
        """The byte where a packet should start is not 0x47; returns where to go on.

        If the next packet boundary still holds a sync byte, only this sync byte was
        damaged: count it and skip the packet (Sync_byte_error; two in a row are
        TS_sync_loss, TR 101 290 1.1). Otherwise bytes were lost or added: hunt for
        three sync bytes 188 apart (sync loss) and resume there.
        """
        if len(data) - pos < 2 * TS_PACKET:
            return None
        if data[pos + TS_PACKET] == SYNC:
            self._sync_error()
            self.packet_index += 1
            return pos + TS_PACKET
        for candidate in range(pos + 1, len(data) - 2 * TS_PACKET):
            if (
                data[candidate]
                == SYNC
                == data[candidate + TS_PACKET]
                == data[candidate + 2 * TS_PACKET]
            ):
                self._sync_error(lost=True)
                return candidate
        return None if len(data) - pos < 64 * TS_PACKET else len(data) - 2 * TS_PACKET

    def _sync_error(self, *, lost: bool = False) -> None:
        self.counts["sync_byte_error"] += 1
        self.bad_sync_run += 1
        if (lost or self.bad_sync_run == 2) and self.in_sync:
            self.in_sync = False
            self._event("ts_sync_loss", None)

    # -- packets ----------------------------------------------------------------------
    def _packets(self, chunk: np.ndarray[Any, Any], data: bytes, base: int) -> None:
        if not len(chunk):
            return
        if not self.in_sync:
            self.in_sync = True
        self.bad_sync_run = 0
        b1, b2, b3 = chunk[:, 1].astype(np.int32), chunk[:, 2], chunk[:, 3]
        tei = (b1 & 0x80) != 0
        pusi = (b1 & 0x40) != 0
        pid = ((b1 & 0x1F) << 8) | b2
        afc = (b3 >> 4) & 0x3
        cc = b3 & 0x0F
        has_payload = (afc & 1) != 0
        af_len = np.where(afc & 2, chunk[:, 4], 0)
        af_flags = np.where(((afc & 2) != 0) & (af_len > 0), chunk[:, 5], 0)
        discontinuity = (af_flags & 0x80) != 0
        has_pcr = (af_flags & 0x10) != 0
        # Packets Python must look at: errors, PSI, PCR, PES starts, discontinuities.
        interesting = tei | has_pcr | discontinuity | (pid == PAT_PID) | (pid == SDT_PID)
        if self.pmt_pids:
            interesting |= _pid_table(frozenset(self.pmt_pids))[pid]
        if self.es_pids:
            interesting |= pusi & _pid_table(frozenset(self.es_pids))[pid]
        if self.scte35:
            interesting |= _pid_table(frozenset(self.scte35))[pid]
        cc_error_at = self._continuity(pid, cc, has_payload, discontinuity)
        rows = sorted(set(np.flatnonzero(interesting).tolist()) | cc_error_at)
        if rows:
            # Plain ints and bytes for the per-packet code: numpy scalars cost ~10x more.
            at = np.array(rows)
            for i, pid_i, tei_i, pusi_i, afc_i, pcr_i, discontinuity_i in zip(
                rows,
                pid[at].tolist(),
                tei[at].tolist(),
                pusi[at].tolist(),
                afc[at].tolist(),
                has_pcr[at].tolist(),
                discontinuity[at].tolist(),
                strict=True,
            ):
                start = base + i * TS_PACKET
                packet = data[start : start + TS_PACKET]
                self._packet(
                    i, packet, pid_i, tei_i, pusi_i, afc_i, pcr_i, discontinuity_i, i in cc_error_at
                )
        # Per-PID packet counts (a count per possible PID: cheaper than sorting them).
        counts = np.bincount(pid, minlength=PID_COUNT)
        present = np.flatnonzero(counts)
        for p, n in zip(present.tolist(), counts[present].tolist(), strict=True):
            stats = self.pids.setdefault(p, PidStats())
            stats.packets += n
            stats.last_seen_clock = self.clock
        self.packet_index += len(chunk)
        self._timeouts()

    def _continuity(
        self, pid: IntArray, cc: IntArray, has_payload: BoolArray, discontinuity: BoolArray
    ) -> set[int]:
        """Indices (in this chunk) of packets with a continuity count error.

        All PIDs at once: the packets that carry a payload, grouped by PID in stream
        order, each compared with the one before it on its PID (the first of a group
        with the PID's last counter from earlier chunks)."""
        carrying = np.flatnonzero(has_payload & (pid != NULL_PID))
        if not len(carrying):
            return set()
        idx = carrying[np.argsort(pid[carrying], kind="stable")]
        pids, seq = pid[idx], cc[idx].astype(np.int16)
        starts = np.flatnonzero(np.concatenate(([True], pids[1:] != pids[:-1])))
        ends = np.concatenate((starts[1:], [len(idx)])) - 1
        prev = np.concatenate(([-1], seq[:-1]))
        groups = [self.pids.setdefault(p, PidStats()) for p in pids[starts].tolist()]
        prev[starts] = [stats.last_cc for stats in groups]
        for stats, last in zip(groups, seq[ends].tolist(), strict=True):
            stats.last_cc = last
        step = (seq - prev) % 16
        # One duplicate packet is allowed; a discontinuity indicator resets; a PID's
        # first packet has nothing to follow.
        bad = (step != 1) & (step != 0) & (prev >= 0) & ~discontinuity[idx]
        return set(idx[bad].tolist())

    def _packet(
        self,
        i: int,
        pkt: bytes,
        pid: int,
        tei: bool,
        pusi: bool,
        afc: int,
        has_pcr: bool,
        discontinuity: bool,
        cc_error: bool,
    ) -> None:
        stats = self.pids.setdefault(pid, PidStats())
        index = self.packet_index + i
        if tei:
            stats.tei += 1
            self._event("ts_tei", pid, index)
        if cc_error:
            stats.cc_errors += 1
            self._event("ts_cc_error", pid, index)
            if pid in self.scte35:
                self.scte35[pid].reset()  # a section with a packet missing is no section
        if has_pcr:
            self._pcr(pkt, pid, stats, discontinuity, index)
        if tei:
            return  # the rest of a packet flagged in error is not trusted
        payload_start = 4 + (1 + pkt[4] if afc & 2 else 0)
        if not afc & 1 or payload_start >= TS_PACKET:
            return
        payload = pkt[payload_start:]
        if pid == PAT_PID or pid in self.pmt_pids:
            if pusi:
                self._section(pid, payload[1 + payload[0] :], index)
        elif pid in self.scte35:
            for section in self.scte35[pid].feed(payload, pusi):
                self._splice_info(section, pid, index)
        elif pid == SDT_PID:
            for section in self.sdt.feed(payload, pusi):
                self._service_table(section, index)
        elif pusi and pid in self.es_pids:
            self._pes_start(payload, pid, stats, index)

    # -- PSI --------------------------------------------------------------------------
    def _section(self, pid: int, section: bytes, index: int) -> None:
        if len(section) < 8 or section[0] == 0xFF:
            return
        length = ((section[1] & 0x0F) << 8) | section[2]
        if 3 + length > len(section):
            return  # a section spanning packets: not checked here (PAT/PMT fit in one)
        body = section[: 3 + length]
        if body == self.table_body.get(pid):
            # The table repeated unchanged (every ~100 ms): checked and read already.
            self._table_seen(pid, index)
            return
        table_id = body[0]
        expected = 0x00 if pid == PAT_PID else 0x02
        if crc32_mpeg(body[:-4]) != int.from_bytes(body[-4:], "big"):
            self._event("ts_crc_error", pid, index, table_id=table_id)
            return
        if table_id != expected:
            self._event(
                "ts_pat_error" if pid == PAT_PID else "ts_pmt_error",
                pid,
                index,
                reason=f"table_id {table_id:#x}",
            )
            return
        entries = body[8:-4]
        self._table_seen(pid, index)
        self.table_body[pid] = body
        if pid == PAT_PID:
            for k in range(0, len(entries) - 3, 4):
                program = int.from_bytes(entries[k : k + 2], "big")
                program_pid = int.from_bytes(entries[k + 2 : k + 4], "big") & 0x1FFF
                if program != 0:
                    self.pmt_pids.add(program_pid)
        else:
            self.pcr_pid = int.from_bytes(body[8:10], "big") & 0x1FFF
            self._programme(pid, pmt_streams(body), index)

    def _programme(self, pmt_pid: int, streams: list[dict[str, Any]], index: int) -> None:
        """A new or changed PMT: the streams it lists are the ones checked from now on
        (a PID it dropped is no PID_error), and the structure detector is told."""
        before = self.programmes.get(pmt_pid)
        self.programmes[pmt_pid] = streams
        self.es_pids = {s["pid"]: s["stream_type"] for p in self.programmes.values() for s in p}
        cue_pids = {pid for pid, kind in self.es_pids.items() if kind == SCTE35_STREAM_TYPE}
        self.scte35 = {pid: self.scte35.get(pid) or SectionAssembler() for pid in cue_pids}
        self._event("programme", pmt_pid, index, streams=streams, before=before)

    def _service_table(self, section: bytes, index: int) -> None:
        """An SDT section: its CRC (TR 101 290 2.2), and its service names when new."""
        if section[0] != SDT_ACTUAL or section == self.table_body.get(SDT_PID):
            return
        if crc32_mpeg(section[:-4]) != int.from_bytes(section[-4:], "big"):
            self._event("ts_crc_error", SDT_PID, index, table_id=section[0])
            return
        self.table_body[SDT_PID] = section
        self._event("service", SDT_PID, index, services=sdt_services(section))

    def _splice_info(self, section: bytes, pid: int, index: int) -> None:
        """An SCTE-35 cue: handed on, dated like any finding, for the scte35 detector."""
        try:
            cue = read_cue(section)
        except Scte35Error as exc:
            self._event("scte35_crc_error", pid, index, reason=str(exc))
            return
        self._event("scte35_cue", pid, index, **cue)

    # -- clocks -----------------------------------------------------------------------
    def _pcr(self, pkt: bytes, pid: int, stats: PidStats, discontinuity: bool, index: int) -> None:
        raw = pkt[6:12]
        base = int.from_bytes(raw[:5], "big") >> 7
        ext = ((raw[4] & 0x01) << 8) | raw[5]
        pcr = base * 300 + ext
        previous = stats.last_pcr
        stats.last_pcr = pcr
        self._date_held(pcr / 27e6)
        self.clock = pcr / 27e6
        if self.first_clock is None:
            self.first_clock = self.clock
            for table in self.table_body:  # tables read before any clock: seen now
                self.table_last.setdefault(table, self.clock)
        judge_accuracy = pid == self.pcr_pid
        if previous is None or discontinuity:
            if judge_accuracy:
                self.pcr_accuracy.reset()
            return
        ticks = (pcr - previous) % PCR_WRAP
        if ticks > PCR_WRAP // 2:  # a step back (signed, across the 33-bit wrap)
            ticks -= PCR_WRAP
        delta = ticks / 27e6
        jumped = delta < 0 or delta > PCR_JUMP_S
        if jumped or delta > PCR_INTERVAL_S:
            # Dated by this PCR, which is what shows the error (nothing to hold it for).
            check, measure = ("discontinuity", "jump_s") if jumped else ("repetition", "interval_s")
            details = {"check": check, measure: round(delta, 4)}
            self._event("ts_pcr_error", pid, index, at=self.clock, **details)
        if jumped:
            if judge_accuracy:
                self.pcr_accuracy.reset()
            # The clock stood still or stepped: how long a stream went without a PES
            # cannot be told across it (the PCR error says what happened).
            for other in self.pids.values():
                if other.last_pts_clock is not None:
                    other.last_pts_clock = self.clock
            return
        if judge_accuracy:
            error_ns = self.pcr_accuracy.error_ns(index, ticks)
            if error_ns is not None:
                self._event("ts_pcr_accuracy", pid, index, at=self.clock, error_ns=error_ns)

    def _date_held(self, next_clock: float) -> None:
        """Date the findings held since the last PCR, now that the next one is here."""
        if not self.held:
            return
        last = self.clock
        unseen = last is None or not 0 <= next_clock - last <= PCR_JUMP_S
        self._release_held(next_clock if unseen else last)

    def finish(self) -> None:
        """The input ended: hand on the findings held for the next PCR, dated by the last."""
        self._release_held(self.clock)

    def _release_held(self, at: float | None) -> None:
        for event in self.held:
            event.time = at
        self.events += self.held
        self.held = []

    def _pes_start(self, payload: bytes, pid: int, stats: PidStats, index: int) -> None:
        if len(payload) < 14 or payload[:3] != b"\x00\x00\x01" or not payload[7] & 0x80:
            return
        p = payload[9:14]
        pts = ((p[0] >> 1) & 0x07) << 30 | p[1] << 22 | (p[2] >> 1) << 15 | p[3] << 7 | p[4] >> 1
        stats.last_pts = pts
        last, now = stats.last_pts_clock, self.clock
        if last is not None and now is not None:
            # Overdue by the time this PES came: one error each 0.7 s, dated when it
            # fell due (the check at the end of a chunk misses a stream back in time for
            # it, and a chunk of a thin stream spans seconds).
            due = last + PTS_INTERVAL_S
            while now - due > 1e-6:
                self._event("ts_pts_error", pid, index, at=due, gap_s=round(now - last, 3))
                due += PTS_INTERVAL_S
        stats.last_pts_clock = now

    def _timeouts(self) -> None:
        """Tables and streams that have not been seen for too long (by the PCR clock)."""
        now = self.clock
        if now is None:
            return
        for table in (PAT_PID, *self.pmt_pids):
            self._tables_overdue(table, now, self.packet_index)
        for es_pid in self.es_pids:
            if es_pid in self.scte35:
                continue  # cues come when there is something to say: sparse by design
            stats = self.pids.setdefault(es_pid, PidStats())
            if stats.last_seen_clock is None:
                stats.last_seen_clock = now
            elif now - stats.last_seen_clock > PID_TIMEOUT_S:
                self._event(
                    "ts_pid_error",
                    es_pid,
                    self.packet_index,
                    at=now,
                    gap_s=round(now - stats.last_seen_clock, 3),
                )
                stats.last_seen_clock = now
            if stats.last_pts_clock is not None and now - stats.last_pts_clock > PTS_INTERVAL_S:
                self._event(
                    "ts_pts_error",
                    es_pid,
                    self.packet_index,
                    at=now,
                    gap_s=round(now - stats.last_pts_clock, 3),
                )
                stats.last_pts_clock = now

    def _table_seen(self, pid: int, index: int) -> None:
        """A PAT or PMT arrived: first report the 0.5 s it overran, if any (between two
        chunks' checks a table can be late and back again)."""
        if self.clock is None:
            return
        self._tables_overdue(pid, self.clock, index)
        self.table_last[pid] = self.clock
        self.table_reported.pop(pid, None)

    def _tables_overdue(self, pid: int, now: float, index: int) -> None:
        """One error for each 0.5 s a table has not been repeated, dated when it fell due."""
        last = self.table_last.setdefault(pid, now)
        due = self.table_reported.get(pid, last) + PSI_INTERVAL_S
        name = "PAT" if pid == PAT_PID else "PMT"
        while due < now - 1e-9:
            self._event(
                f"ts_{name.lower()}_error",
                pid,
                index,
                at=due,
                reason=f"{name} missing",
                gap_s=round(due - last, 3),
            )
            self.table_reported[pid] = due
            due += PSI_INTERVAL_S

    def _event(
        self,
        type_: str,
        pid: int | None,
        index: int | None = None,
        at: float | None = None,
        **details: Any,
    ) -> None:
        if type_ not in NEWS:
            self.counts[type_] += 1
        event = TsEvent(type_, at, self.packet_index if index is None else index, pid, details)
        if at is None and self.clock is not None:
            self.held.append(event)  # dated by the next PCR (_date_held)
        else:
            self.events.append(event)

    def summary(self) -> dict[str, Any]:
        span = None
        if self.first_clock is not None and self.clock is not None:
            span = self.clock - self.first_clock if self.clock > self.first_clock else None
        accuracy = self.pcr_accuracy
        return {
            "packets": self.packet_index,
            "duration_s": None if span is None else round(span, 3),
            "errors": dict(sorted(self.counts.items())),
            # PCRs judged for accuracy: none on a variable-bitrate stream.
            "pcr_accuracy": {
                "judged": accuracy.judged,
                "worst_ns": round(accuracy.worst_ns, 1) if accuracy.judged else None,
            },
            "pids": {
                f"{pid:#06x}": {
                    "packets": s.packets,
                    # Per-PID bitrate over the span of the PCR clock.
                    "bitrate_bps": None if span is None else round(s.packets * 188 * 8 / span),
                    "cc_errors": s.cc_errors,
                    "tei": s.tei,
                    "stream_type": self.es_pids.get(pid),
                }
                for pid, s in sorted(self.pids.items())
            },
        }
