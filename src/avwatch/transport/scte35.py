"""SCTE-35 splice information sections, read with threefive into what a monitor
judges: is this a cue-out (a break starts) or a cue-in (it ends), when does it
take effect, for how long, and does it return by itself.

Splice times are put in seconds of the PTS clock (``pts_adjustment`` applied,
modulo 2^33), the clock TR 101 290 findings are dated by, so the pipeline places
them on the media timeline the same way.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import threefive

from avwatch.transport.crc import crc32_mpeg

__all__ = ["BREAK_ENDS", "BREAK_STARTS", "Scte35Error", "read_cue"]

PTS_WRAP_S = (1 << 33) / 90_000
TABLE_ID = 0xFC

# Segmentation types that open and close a break (SCTE-35 2023, table 23): break,
# provider and distributor advertisement, placement opportunities.
BREAK_STARTS = frozenset({0x22, 0x30, 0x32, 0x34, 0x36})
BREAK_ENDS = frozenset({0x23, 0x31, 0x33, 0x35, 0x37})


class Scte35Error(ValueError):
    """A section that is not a valid splice_info_section (bad CRC, unparsable)."""


def read_cue(section: bytes) -> dict[str, Any]:
    """One splice_info_section as the fields a monitor judges; ``Scte35Error`` when
    its CRC fails or it cannot be parsed (threefive itself does not check the CRC)."""
    if len(section) < 15 or section[0] != TABLE_ID:
        raise Scte35Error(f"not a splice_info_section (table_id {section[:1].hex() or '-'})")
    if crc32_mpeg(section[:-4]) != int.from_bytes(section[-4:], "big"):
        raise Scte35Error("CRC_32 does not match")
    cue = threefive.Cue(section)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            cue.decode()  # threefive prints what it finds odd: kept out of the log
        fields = cue.get()
    except Exception as exc:  # threefive raises what its parsing meets
        raise Scte35Error(f"cannot be parsed: {type(exc).__name__}: {exc}") from exc
    command = fields.get("command") or {}
    adjustment = float(fields["info_section"].get("pts_adjustment") or 0.0)
    pts = command.get("pts_time")
    out: dict[str, Any] = {
        "command": str(command.get("name", "unknown")).lower().replace(" ", "_"),
        "splice_clock": None if pts is None else (float(pts) + adjustment) % PTS_WRAP_S,
        "out": None,
        "event_id": None,
        "duration_s": None,
        "auto_return": False,
        "cancel": False,
    }
    if command.get("command_type") == 5:  # splice_insert
        out["event_id"] = command.get("splice_event_id")
        out["cancel"] = bool(command.get("splice_event_cancel_indicator"))
        out["out"] = bool(command.get("out_of_network_indicator"))
        if command.get("duration_flag"):
            out["duration_s"] = command.get("break_duration")
            out["auto_return"] = bool(command.get("break_auto_return"))
    for descriptor in fields.get("descriptors") or []:
        type_id = descriptor.get("segmentation_type_id")
        if type_id in BREAK_STARTS | BREAK_ENDS:
            out["out"] = type_id in BREAK_STARTS
            out["event_id"] = _event_id(descriptor.get("segmentation_event_id"))
            out["cancel"] = bool(descriptor.get("segmentation_event_cancel_indicator"))
            out["duration_s"] = descriptor.get("segmentation_duration")
            out["segmentation"] = descriptor.get("segmentation_message")
    return out


def _event_id(value: Any) -> int | None:
    """threefive gives segmentation event ids as hex text, splice event ids as ints."""
    if isinstance(value, str):
        return int(value, 16)
    return value if isinstance(value, int) else None
