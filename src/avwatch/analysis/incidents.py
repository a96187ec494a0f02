"""Detector start/end events into incidents: pairing, merging, severity.

Detectors already hold back a defect until it has lasted its minimum
duration; a detector may restate an open defect's start when later data dates
it better. The tracker pairs each start with its end per (type, key), and
merges an incident into the previous one of the same type and key when they
are at most ``merge_gap_s`` apart, so one flickering defect is one incident.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from avwatch.types import DefectEvent, Incident, MediaTime

__all__ = ["IncidentTracker"]

Listener = Callable[[Incident], None]
# Times are sums of float steps: an error repeated every 0.5 s lands 0.5 + 4e-15 s
# after the last, and is still "0.5 s apart".
TIME_SLACK_S = 1e-6


class IncidentTracker:
    def __init__(
        self,
        merge_gap_s: float = 0.5,
        on_open: Listener | None = None,
        on_close: Listener | None = None,
        *,
        keep_history: bool = True,
    ) -> None:
        self.merge_gap_s = merge_gap_s
        # A 24/7 monitor hands incidents to its listeners and keeps none: memory
        # stays bounded by the number of (type, key) pairs.
        self.keep_history = keep_history
        self.incidents: list[Incident] = []
        self._open: dict[tuple[str, str], Incident] = {}
        self._last_closed: dict[tuple[str, str], Incident] = {}
        self._on_open = on_open
        self._on_close = on_close

    def feed(self, event: DefectEvent) -> None:
        ident = (event.type, event.key)
        if event.phase == "start":
            if ident in self._open:
                # A detector restating an open defect with a better start time.
                self._open[ident].start = event.time
                return
            previous = self._last_closed.get(ident)
            if (
                previous is not None
                and previous.end is not None
                and event.time - previous.end <= self.merge_gap_s + TIME_SLACK_S
            ):
                previous.end = None
                previous.details["merged"] = previous.details.get("merged", 1) + 1
                self._open[ident] = previous
                _merge_details(previous.details, event.details, add_counts=True)
                if self._on_open:  # a live listener sees the incident open again
                    self._on_open(previous)
                return
            incident = Incident(
                type=event.type,
                start=event.time,
                end=None,
                severity=event.severity,
                detector=event.detector,
                key=event.key,
                details=dict(event.details),
            )
            if self.keep_history:
                self.incidents.append(incident)
            self._open[ident] = incident
            if self._on_open:
                self._on_open(incident)
        else:
            if ident not in self._open:
                return
            incident = self._open.pop(ident)
            incident.end = max(event.time, incident.start)
            if event.severity.rank > incident.severity.rank:
                incident.severity = event.severity
            _merge_details(incident.details, event.details, add_counts=False)
            self._last_closed[ident] = incident
            if self._on_close:
                self._on_close(incident)

    def close_all(self, end: MediaTime) -> None:
        """Close whatever a detector left open (it should not, after flush)."""
        for incident in list(self._open.values()):
            incident.end = end
            if self._on_close:
                self._on_close(incident)
        self._open.clear()

    def sorted(self) -> list[Incident]:
        return sorted(self.incidents, key=lambda i: (i.start, i.type, i.key))


def _merge_details(into: dict[str, Any], new: dict[str, Any], *, add_counts: bool) -> None:
    """Other details take the latest value; a ``count`` adds up over merged pieces
    (a piece's end event restates its start's count, so it is not added again)."""
    for key, value in new.items():
        if key == "count" and key in into:
            if add_counts:
                into[key] += value
        else:
            into[key] = value
