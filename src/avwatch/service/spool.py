"""Changes the store could not take, kept on disk too: a service that stops (or is
killed) while its database is down loses none of them.

JSON lines, appended in the order the changes came; the service reads them back
at its next start, before anything else, and deletes the file once every change
in it is stored. A change may then be stored twice (one stored just before a
crash is read back too): incident changes are upserts by id, so that is harmless.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from avwatch.service.messages import Evidence, IncidentUpdate

__all__ = ["Spool", "StoreChange"]

log = logging.getLogger(__name__)

StoreChange = IncidentUpdate | Evidence


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.error: str | None = None  # why the last write failed

    def append(self, changes: Iterable[StoreChange]) -> bool:
        """Add ``changes`` at the end; False (and ``error`` says why) if it cannot."""
        lines = "".join(json.dumps(_encode(c)) + "\n" for c in changes)
        try:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(lines)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            if self.error is None:
                log.error("the spool %s cannot be written either: %s", self.path, exc)
            self.error = f"{type(exc).__name__}: {exc}"
            return False
        self.error = None
        return True

    def read(self) -> list[StoreChange]:
        """What a stopped service left; a torn last line (killed mid-write) is skipped."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        changes = []
        for number, line in enumerate(text.splitlines(), 1):
            try:
                changes.append(_decode(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("spool %s line %d skipped: %s", self.path, number, exc)
        return changes

    def clear(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("the spool %s cannot be deleted: %s", self.path, exc)


def _encode(change: StoreChange) -> dict[str, Any]:
    if isinstance(change, IncidentUpdate):
        return {"incident": asdict(change)}
    fields = asdict(change)
    fields["data"] = base64.b64encode(change.data).decode("ascii")
    return {"evidence": fields}


def _decode(item: dict[str, Any]) -> StoreChange:
    if "incident" in item:
        return IncidentUpdate(**item["incident"])
    fields = dict(item["evidence"])
    fields["data"] = base64.b64decode(fields["data"])
    return Evidence(**fields)
