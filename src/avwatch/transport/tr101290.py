"""What ETSI TR 101 290 says about the analyser's findings: the checks' numbers and
names, their priority, and findings as the defect events incidents are made from.

The checks themselves run in ``analyser.py``; this module is the standard's table.
"""

from __future__ import annotations

from avwatch.types import DefectEvent, MediaTime, Severity, TransportFinding

__all__ = ["CHECKS", "FIRST_PRIORITY", "TR101290_TYPES", "defect_events"]

# The checks in the order of the standard: (number, name, avwatch's event type).
CHECKS = (
    ("1.1", "TS_sync_loss", "ts_sync_loss"),
    ("1.2", "Sync_byte_error", "sync_byte_error"),
    ("1.3", "PAT_error", "ts_pat_error"),
    ("1.4", "Continuity_count_error", "ts_cc_error"),
    ("1.5", "PMT_error", "ts_pmt_error"),
    ("1.6", "PID_error", "ts_pid_error"),
    ("2.1", "Transport_error", "ts_tei"),
    ("2.2", "CRC_error", "ts_crc_error"),
    ("2.3", "PCR_error (repetition / discontinuity)", "ts_pcr_error"),
    ("2.4", "PCR_accuracy_error (constant-bitrate streams)", "ts_pcr_accuracy"),
    ("2.5", "PTS_error", "ts_pts_error"),
)

TR101290_TYPES = frozenset(event_type for _, _, event_type in CHECKS)

# First priority: the stream cannot be decoded reliably.
FIRST_PRIORITY = frozenset(
    {"ts_sync_loss", "ts_pat_error", "ts_cc_error", "ts_pmt_error", "ts_pid_error"}
)


def defect_events(
    finding: TransportFinding, details: dict[str, object]
) -> tuple[DefectEvent, DefectEvent]:
    """A finding as an instant defect (start and end at once), keyed by its PID so
    findings on different PIDs make different incidents."""
    severity = Severity.ERROR if finding.type in FIRST_PRIORITY else Severity.WARNING
    key = "" if finding.pid is None else f"{finding.pid:#06x}"
    body = {"pid": finding.pid, "count": 1, "packet": finding.packet, **details}
    at: MediaTime = finding.time
    return (
        DefectEvent(finding.type, "start", at, "ts", severity, key, body),
        DefectEvent(finding.type, "end", at, "ts", severity, key, body),
    )
