"""Transport damage applied to the bytes of a clean MPEG-TS, with its truth.

The transport truth follows from what was done to the packets (a run of lost
video packets is one continuity error where it ends; a flagged packet is a
transport error). The picture truth is measured, because which frames a lost
packet really damages depends on the codec, the GOP and the decoder's
concealment (docs/media.md trap 5): the damaged and the clean file are both decoded
and compared frame by frame (luma matched by PTS). A frame whose worst 16x16
block is under ``DAMAGED_PSNR_DB``, or that is missing from the damaged decode,
is damaged; runs of damaged frames are the ``corruption`` truth, runs of missing
ones the ``dropped_frames`` truth. PCR and PAT/PMT gaps are measured on the
damaged packets (``transport_truth``).

Places are given in media seconds (t = 0 at the first displayed picture) and
found in the packets through the PCR clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
import numpy.typing as npt

from avwatch.lab.truth import MERGE_GAP_S, TruthEvent
from avwatch.transport.analyser import (
    NULL_PID,
    PAT_PID,
    PCR_INTERVAL_S,
    PSI_INTERVAL_S,
    PTS_INTERVAL_S,
    TS_PACKET,
)

__all__ = ["Damage", "audio_truth", "damage_ts", "picture_truth", "transport_truth"]

# Re-decoding a clean stream is bit-exact, so any difference is damage; a 16x16 block
# under this PSNR is damage a viewer can see.
DAMAGED_PSNR_DB = 30.0
BLOCK = 16
# PES stream ids that carry a PTS: private stream 1 (AC-3), audio, video.
PES_STREAM_IDS = frozenset({0xBD, *range(0xC0, 0xF0)})
DamageKind = Literal["drop", "corrupt", "cc_jump", "tei", "pat_gap", "pmt_gap", "cut"]
Packets = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Damage:
    """``packets`` video packets from ``at_s`` on: lost (``drop``), payload overwritten
    with noise (``corrupt``), flagged with the transport error indicator (``tei``);
    or the video continuity counter stepped without losing data (``cc_jump``); or
    every PAT (``pat_gap``) or PMT (``pmt_gap``) packet for ``seconds`` from ``at_s``; or
    every packet of every PID for ``seconds`` from ``at_s`` (``cut``: the signal went away)."""

    kind: DamageKind
    at_s: float
    packets: int = 1
    seconds: float = 0.0


def _pids(p: Packets) -> npt.NDArray[np.int64]:
    return ((p[:, 1].astype(np.int64) & 0x1F) << 8) | p[:, 2]


def _has_pcr(p: Packets) -> npt.NDArray[np.bool_]:
    """Packets whose adaptation field carries a PCR."""
    return np.asarray(((p[:, 3] & 0x20) != 0) & (p[:, 4] > 0) & ((p[:, 5] & 0x10) != 0))


def _clock_s(p: Packets, pid: int) -> npt.NDArray[np.float64]:
    """The PCR clock (seconds) at every packet: the last PCR of ``pid`` before it."""
    has_pcr = (_pids(p) == pid) & _has_pcr(p)
    clock = np.full(len(p), np.nan)
    for row in np.flatnonzero(has_pcr):
        raw = int.from_bytes(p[row, 6:12].tobytes(), "big")
        clock[row] = ((raw >> 15) * 300 + (raw & 0x1FF)) / 27e6
    # Forward fill: each packet takes the latest PCR.
    index = np.where(~np.isnan(clock), np.arange(len(p)), 0)
    np.maximum.accumulate(index, out=index)
    return clock[index]


def _timeline(p: Packets, path: Path) -> tuple[npt.NDArray[np.int64], int, npt.NDArray[np.float64]]:
    """Each packet's PID, the video PID (FFmpeg's muxer puts the PCR on it), and each
    packet's media time by that PCR clock (t = 0 at the first picture of ``path``).
    Not the PID with most packets: HEVC at 40 kb/s has fewer than its AAC sound."""
    pids = _pids(p)
    values, counts = np.unique(pids[_has_pcr(p)], return_counts=True)
    video = int(values[np.argmax(counts)])
    return pids, video, _clock_s(p, video) - first_picture_s(path)


def first_picture_s(path: Path) -> float:
    """PTS seconds of the first displayed picture: media time 0."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            return float(frame.time or 0.0)
    raise ValueError(f"{path}: no pictures")


def damage_ts(clean: Path, damaged: Path, damages: list[Damage]) -> list[TruthEvent]:
    """Write ``damaged`` from ``clean``; returns the transport truth events."""
    p = np.frombuffer(clean.read_bytes(), np.uint8).reshape(-1, TS_PACKET).copy()
    pids, video, media_s = _timeline(p, clean)
    rng = np.random.default_rng(1)
    keep = np.ones(len(p), bool)
    truth: list[TruthEvent] = []
    starts_pes = (p[:, 1] & 0x40) != 0
    for d in damages:
        if d.kind in ("pat_gap", "pmt_gap"):
            table = PAT_PID if d.kind == "pat_gap" else _pmt_pid(p, pids)
            gone = (pids == table) & (media_s >= d.at_s) & (media_s < d.at_s + d.seconds)
            keep[gone] = False
            continue  # its truth is measured on the result (transport_truth)
        if d.kind == "cut":
            gone = (media_s >= d.at_s) & (media_s < d.at_s + d.seconds)
            keep[gone] = False
            truth += _cut_continuity_truth(p, pids, media_s, gone)
            continue
        candidates = (pids == video) & (media_s >= d.at_s)
        if d.kind == "corrupt":
            candidates &= ~starts_pes  # bit errors inside pictures; the PES headers survive
        rows = np.flatnonzero(candidates)[: d.packets]
        at = round(float(media_s[rows[0]]), 3)
        if d.kind == "drop":
            assert d.packets % 16, "a multiple of 16 lost packets leaves the counter in step"
            keep[rows] = False
            truth.append(_event("ts_cc_error", at, video))
        elif d.kind == "corrupt":
            # The payload after the header and any adaptation field: no transport error.
            for row in rows:
                start = _payload_start(p[row])
                p[row, start:] = rng.integers(0, 256, TS_PACKET - start, dtype=np.uint8)
        elif d.kind == "tei":
            p[rows, 1] |= 0x80
            truth.append(_event("ts_tei", at, video))
        else:  # cc_jump: every later video packet's counter moves on by 5
            later = np.flatnonzero((pids == video) & (np.arange(len(p)) >= rows[0]))
            p[later, 3] = (p[later, 3] & 0xF0) | ((p[later, 3] & 0x0F) + 5) % 16
            truth.append(_event("ts_cc_error", at, video))
    damaged.write_bytes(p[keep].tobytes())
    return truth


def _cut_continuity_truth(
    p: Packets,
    pids: npt.NDArray[np.int64],
    media_s: npt.NDArray[np.float64],
    gone: npt.NDArray[np.bool_],
) -> list[TruthEvent]:
    """The continuity errors a cut leaves on the elementary streams' PIDs: one where each
    PID resumes, unless a multiple of 16 of its packets went (the counter is then in step).
    The tables' PIDs are measured on the result by ``transport_truth``; null packets
    carry no counter."""
    table_pids = {PAT_PID, _pmt_pid(p, pids), NULL_PID}
    events: list[TruthEvent] = []
    resume = np.flatnonzero(gone)[-1] + 1
    for pid in np.unique(pids[gone]).tolist():
        after = np.flatnonzero(pids[resume:] == pid)
        lost = int(np.count_nonzero(pids[gone] == pid))
        if pid in table_pids or not len(after) or lost % 16 == 0:
            continue
        events.append(_event("ts_cc_error", round(float(media_s[resume + after[0]]), 3), pid))
    return events


def _payload_start(packet: npt.NDArray[np.uint8]) -> int:
    """Where a packet's payload begins: past the header and any adaptation field."""
    return 4 + (1 + int(packet[4]) if packet[3] & 0x20 else 0)


def _pmt_pid(p: Packets, pids: npt.NDArray[np.int64]) -> int:
    """The PID of the first programme's PMT, from the first PAT."""
    row = p[np.flatnonzero(pids == PAT_PID)[0]]
    start = _payload_start(row)
    section = row[start + 1 + int(row[start]) :]  # past the pointer field
    for k in range(8, 8 + int(((section[1] & 0x0F) << 8 | section[2]) - 9), 4):
        if (int(section[k]) << 8 | int(section[k + 1])) != 0:
            return (int(section[k + 2]) & 0x1F) << 8 | int(section[k + 3])
    raise ValueError("the PAT names no programme")


def transport_truth(path: Path, merge_gap_s: float) -> list[TruthEvent]:
    """What a TS file's packets say, measured by a parse of its own and the PCR clock:

    - ``ts_pcr_error`` where the interval to the next PCR is over TR 101 290's 40 ms
      (lost packets took PCRs with them, or the muxer had no video to carry one); errors
      less than ``merge_gap_s`` apart are one span, as incidents are (a muxer that puts
      a PCR only in each picture of a 10 fps stream is in error all along);
    - ``ts_pat_error``/``ts_pmt_error`` where a table was not repeated within 0.5 s
      (1.3, 1.5): one per gap, from when it fell due to the last 0.5 s it overran,
      and the continuity error its missing packets leave on its PID;
    - ``ts_pts_error`` where an elementary stream went over 0.7 s without a PES (2.5;
      FFmpeg's muxer gives every PES a PTS) while the PCR clock ran: one each 0.7 s it
      stays overdue, as the analyser reports it (an audio loss of 1.5 s is two).
      A stream silent while the PCR stopped too (the video gone, and the PCR with it)
      is a PCR error; the analyser's clock stood still.
    """
    p = np.frombuffer(path.read_bytes(), np.uint8).reshape(-1, TS_PACKET)
    pids, _, media_s = _timeline(p, path)
    events: list[TruthEvent] = []
    pcrs = np.unique(media_s[~np.isnan(media_s)]).tolist()
    for a, b in pairwise(pcrs):
        if b - a > PCR_INTERVAL_S + 1e-6:
            at = round(b, 3)
            if events and at - events[-1]["end"] <= merge_gap_s:
                events[-1]["end"] = at
            else:
                events.append({"type": "ts_pcr_error", "start": at, "end": at, "details": {}})
    for type_, pid in (("ts_pat_error", PAT_PID), ("ts_pmt_error", _pmt_pid(p, pids))):
        rows = np.flatnonzero((pids == pid) & ~np.isnan(media_s))
        times = media_s[rows].tolist()
        counters = (p[rows, 3] & 0x0F).tolist()
        for k in range(1, len(rows)):
            a, b = times[k - 1], times[k]
            if b - a > PSI_INTERVAL_S + 1e-6:
                overruns = int((b - a - 1e-6) // PSI_INTERVAL_S)
                first, last = a + PSI_INTERVAL_S, a + overruns * PSI_INTERVAL_S
                events.append({**_event(type_, round(first, 3), pid), "end": round(last, 3)})
            if (counters[k] - counters[k - 1]) % 16 not in (0, 1):
                events.append(_event("ts_cc_error", round(b, 3), pid))
    return events + _pts_truth(p, pids, media_s, pcrs)


def _pts_truth(
    p: Packets, pids: npt.NDArray[np.int64], media_s: npt.NDArray[np.float64], pcrs: list[float]
) -> list[TruthEvent]:
    """PTS repetition errors: PES starts (audio, video, private streams) more than 0.7 s
    apart on one PID, with the PCR clock running between them."""
    stalls = [(a, b) for a, b in pairwise(pcrs) if b - a > PCR_INTERVAL_S + 1e-6]
    events: list[TruthEvent] = []
    starts = (p[:, 1] & 0x40) != 0
    for pid in np.unique(pids[starts]).tolist():
        times = []
        for row in np.flatnonzero(starts & (pids == pid) & ~np.isnan(media_s)):
            at = _payload_start(p[row])
            head = p[row, at : at + 4]
            if len(head) == 4 and head[:3].tolist() == [0, 0, 1] and head[3] in PES_STREAM_IDS:
                times.append(float(media_s[row]))
        for a, b in pairwise(times):
            if any(a < stop_b and stop_a < b for stop_a, stop_b in stalls):
                continue
            due = a + PTS_INTERVAL_S
            while b - due > 1e-6:  # overdue: reported, and due again 0.7 s later
                events.append(_event("ts_pts_error", round(due, 3), int(pid)))
                due += PTS_INTERVAL_S
    return events


def _event(type_: str, at: float, pid: int) -> TruthEvent:
    return {"type": type_, "start": at, "end": at, "details": {"pid": pid}}


def _pictures(path: Path) -> dict[int, npt.NDArray[np.uint8]]:
    """Luma planes by PTS (the damaged decode may lack some). A picture the decoder gives
    out without a timestamp (a concealed one whose packet lost its PES header) is shown
    one frame after the previous picture, as players and avwatch place it."""
    out: dict[int, npt.NDArray[np.uint8]] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        step = round(1 / (float(stream.average_rate or 25) * float(stream.time_base or 1)))
        last: int | None = None
        try:
            for frame in container.decode(stream):
                pts = frame.pts if frame.pts is not None else None if last is None else last + step
                if pts is not None:
                    out[int(pts)] = np.asarray(frame.to_ndarray(format="gray"), np.uint8)
                    last = int(pts)
        except av.error.FFmpegError:
            pass  # a damaged stream may end in an error: what was decoded is the answer
    return out


def picture_truth(
    clean: Path, damaged: Path, loss_after_s: float, merge_gap_s: float = MERGE_GAP_S
) -> list[TruthEvent]:
    """``corruption`` events: runs of frames whose picture differs from the clean decode
    (PSNR under ``DAMAGED_PSNR_DB``) or is missing from the damaged one. Runs of missing
    frames are ``dropped_frames`` too, or ``video_loss`` when they last ``loss_after_s``
    or longer (the line between the two detectors). Runs of one type less than
    ``merge_gap_s`` apart are one event, as incidents are: with B-frames, damage until
    the next keyframe skips the pictures that did not refer to the lost data."""
    with av.open(str(clean)) as container:
        stream = container.streams.video[0]
        time_base = float(stream.time_base or 0)
        rate = float(stream.average_rate or 25)
    t0 = first_picture_s(clean)
    good, bad = _pictures(clean), _pictures(damaged)
    damaged_frames: list[tuple[int, tuple[float, float]]] = []
    for pts in sorted(good):
        picture = bad.get(pts)
        if picture is None:
            damaged_frames.append((pts, (0.0, np.nan)))  # missing: no area to speak of
            continue
        psnr, area = _block_psnr(good[pts], picture)
        if psnr < DAMAGED_PSNR_DB:
            damaged_frames.append((pts, (psnr, area)))
    damage = _runs([(pts * time_base - t0, v) for pts, v in damaged_frames], rate)
    corruption = _merged(damage, merge_gap_s)
    for e in corruption:
        psnrs, areas = zip(*e["details"].pop("values"), strict=True)
        e["type"] = "corruption"
        e["details"]["min_psnr_db"] = round(min(psnrs), 1)
        shown = [a for a in areas if not np.isnan(a)]
        if shown:  # the largest share of 16x16 blocks damaged in one picture
            e["details"]["damaged_area"] = round(max(shown), 3)
            e["details"]["damaged_area_last"] = round(shown[-1], 3)
    missing = [(pts * time_base - t0, None) for pts in sorted(good) if pts not in bad]
    dropped = _runs(missing, rate)
    for e in dropped:
        lost = e["end"] - e["start"] >= loss_after_s - 1e-6
        e["type"] = "video_loss" if lost else "dropped_frames"
    dropped = _merged(dropped, merge_gap_s)
    for e in dropped:
        e["details"] = {} if e["type"] == "video_loss" else {"count": e["details"]["frames"]}
    return corruption + dropped


def audio_truth(clean: Path, damaged: Path, loss_after_s: float) -> list[TruthEvent]:
    """``audio_loss`` where the damaged file's audio packets leave a hole of
    ``loss_after_s`` or longer (media seconds, t = 0 at the clean file's first picture)."""
    t0 = first_picture_s(clean)
    with av.open(str(damaged)) as container:
        if not container.streams.audio:
            return []
        spans = sorted(
            (float(packet.pts * packet.time_base), float(packet.duration * packet.time_base))
            for packet in container.demux(audio=0)
            if packet.pts is not None and packet.duration
        )
    events: list[TruthEvent] = []
    for (start, duration), (resumed, _) in pairwise(spans):
        if resumed - (start + duration) >= loss_after_s - 1e-6:
            ended, back = round(start + duration - t0, 4), round(resumed - t0, 4)
            events.append({"type": "audio_loss", "start": ended, "end": back, "details": {}})
    return events


def _block_psnr(
    clean: npt.NDArray[np.uint8], damaged: npt.NDArray[np.uint8]
) -> tuple[float, float]:
    """PSNR (dB) of the worst 16x16 block — damage is local (a slice, a few macroblocks),
    and a whole-picture PSNR would average a visible smear away — and the share of
    blocks under ``DAMAGED_PSNR_DB`` (the damaged area)."""
    h, w = (clean.shape[0] // BLOCK) * BLOCK, (clean.shape[1] // BLOCK) * BLOCK
    diff = clean[:h, :w].astype(np.float32) - damaged[:h, :w].astype(np.float32)
    mse = np.square(diff).reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).mean(axis=(1, 3))
    damaged_share = float(np.mean(mse > 255**2 / 10 ** (DAMAGED_PSNR_DB / 10)))
    worst = float(mse.max())
    return (99.0 if worst == 0 else float(10 * np.log10(255**2 / worst))), damaged_share


def _merged(events: list[TruthEvent], gap_s: float = MERGE_GAP_S) -> list[TruthEvent]:
    """Events of one type less than ``gap_s`` apart joined, as the incident tracker does."""
    out: list[TruthEvent] = []
    for e in sorted(events, key=lambda e: (e["type"], e["start"])):
        last = out[-1] if out else None
        if last is not None and last["type"] == e["type"] and e["start"] - last["end"] < gap_s:
            last["end"] = max(last["end"], e["end"])
            last["details"]["frames"] += e["details"]["frames"]
            last["details"]["values"] += e["details"]["values"]
        else:
            out.append(e)
    return sorted(out, key=lambda e: e["start"])


def _runs(frames: list[tuple[float, Any]], rate: float) -> list[TruthEvent]:
    """Consecutive frames (start seconds, value) joined into [start, end) events."""
    events: list[TruthEvent] = []
    for start, value in frames:
        if events and start - events[-1]["end"] < 0.5 / rate:
            events[-1]["end"] = round(start + 1 / rate, 4)
            events[-1]["details"]["frames"] += 1
            events[-1]["details"]["values"].append(value)
        else:
            end = round(start + 1 / rate, 4)
            details = {"frames": 1, "values": [value]}
            events.append({"type": "", "start": round(start, 4), "end": end, "details": details})
    return events
