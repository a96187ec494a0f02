"""The ground truth a test clip is made with: what happened, and when.

Written into every corpus file's ``.truth.json`` and compared with what avwatch
found, so the shapes are JSON's: typed dicts, checked by mypy.
"""

from __future__ import annotations

from typing import Any, TypedDict, TypeVar

from avwatch.config import EngineConfig

__all__ = ["MERGE_GAP_S", "OffsetSpan", "TruthEvent", "at_profile"]

# Incidents of one type closer than this are one (the engine's default): so is the truth.
MERGE_GAP_S = EngineConfig().merge_gap_s


class TruthEvent(TypedDict):
    """A defect put into a clip (or measured on it, for transport damage), in the
    report's event shape: media seconds, t = 0 at the first displayed picture."""

    type: str
    start: float
    end: float
    details: dict[str, Any]


_Event = TypeVar("_Event", TruthEvent, dict[str, Any])  # as written, or as read back


class OffsetSpan(TypedDict):
    """The true A/V offset over [start, end) (positive: audio late)."""

    start: float
    end: float
    offset_ms: float


def at_profile(events: list[_Event], profile: str) -> list[_Event]:
    """The events that are defects at ``profile``: those without ``details.profiles``
    hold at every one (a single black frame is qc's alone)."""
    return [e for e in events if profile in e.get("details", {}).get("profiles", [profile])]
