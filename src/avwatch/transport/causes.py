"""Which transport findings lie behind a damaged picture.

A lost or damaged packet shows twice: to the TR 101 290 analyser when it is
read, and to the decoder as damaged pictures up to the next keyframe. The
analyser sees the bytes first, so when a ``corruption`` incident opens, the
findings that caused it are already known: those on the same timeline from
shortly before the damage began to its end. Their PIDs and packet numbers go
into the incident's details, so an operator can tell a loss on the video PID
from a stray error elsewhere and find the packets in a capture.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from avwatch.types import MediaTime

__all__ = ["CAUSE_TYPES", "TransportCauses"]

# Findings that lose or damage payload; table and clock findings damage no picture.
CAUSE_TYPES = frozenset({"ts_cc_error", "ts_tei", "ts_sync_loss"})
KEPT = 512  # recent findings; a burst beyond this is summarised by its latest part
PACKETS_LISTED = 20


@dataclass(frozen=True, slots=True)
class Finding:
    type: str
    time: MediaTime
    pid: int | None
    packet: int


class TransportCauses:
    def __init__(self, lead_s: float = 1.0) -> None:
        self.lead_s = lead_s  # how long before the damage a cause may lie
        self.recent: deque[Finding] = deque(maxlen=KEPT)

    def add(self, type_: str, time: MediaTime, pid: int | None, packet: int) -> None:
        if type_ in CAUSE_TYPES:
            self.recent.append(Finding(type_, time, pid, packet))

    def between(self, start: MediaTime, end: MediaTime) -> dict[str, Any]:
        """The findings from ``lead_s`` before ``start`` to ``end``, by type: how many,
        on which PIDs, and the first packet numbers (index in the stream)."""
        out: dict[str, Any] = {}
        for f in self.recent:
            if not start - self.lead_s <= f.time <= end:
                continue
            entry = out.setdefault(f.type, {"count": 0, "pids": [], "packets": []})
            entry["count"] += 1
            if f.pid is not None and f.pid not in entry["pids"]:
                entry["pids"].append(f.pid)
            if len(entry["packets"]) < PACKETS_LISTED:
                entry["packets"].append(f.packet)
        return out
