"""The SQLite file's disk fills, or the file is deleted or replaced under a
running service: no incident change, no evidence and no alert is lost, and the
service says what happened. The disk is a real tmpfs of 2 MB, mounted for the
test (root only: skipped elsewhere, with the reason)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servicekit import RecordingPool, black_update, ok_status
from sqlalchemy import select

from avwatch.service.config import ServiceConfig
from avwatch.service.core import Service
from avwatch.service.messages import Evidence
from avwatch.service.store import EvidenceRow, IncidentRow, OutboxRow, Store


def _evidence(incident: str) -> Evidence:
    return Evidence("news", incident, "during.png", "image/png", os.urandom(64_000))


@contextlib.contextmanager
def small_disk(size: str = "2m") -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="avwatch-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


def _fill(disk: Path) -> Path:
    """Take every free byte of ``disk``."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
    return filler


def _stored(database: str) -> tuple[dict[str, bool], int, list[tuple[str, str]]]:
    """Incidents (id -> open), evidence count and alerts, read by a store of its own."""
    store = Store.open(database)
    try:
        with store.session() as s:
            incidents = {r.id: r.open for r in s.scalars(select(IncidentRow))}
            evidence = len(s.scalars(select(EvidenceRow)).all())
            alerts = sorted(
                (a["event"], a["incident"]["id"])
                for a in (json.loads(r.body) for r in s.scalars(select(OutboxRow)))
            )
    finally:
        store.close()
    return incidents, evidence, alerts


def _config(database: str, spool: Path) -> ServiceConfig:
    return ServiceConfig(
        database=database,
        webhooks=[{"url": "http://127.0.0.1:9/hook"}],  # written to the outbox, never sent
        spool_file=str(spool),
    )


def test_a_full_disk_loses_nothing_even_across_a_restart(tmp_path: Path):
    with small_disk() as disk:
        database = f"sqlite:///{disk / 'avwatch.db'}"
        config = _config(database, tmp_path / "spool")  # the spool on another disk
        service = Service(config, pool=RecordingPool())
        service.start()
        service._on_message(black_update("a", open_=True))
        filler = _fill(disk)
        for message in (
            _evidence("a"),
            black_update("a", open_=False),
            black_update("b", open_=True),
        ):
            service._on_message(message)
        health = service.store_health()
        assert not health["ok"] and "full" in health["error"]
        assert health["pending"] == 3 and health["spooled"] == 3
        service.stop()  # stopped while the disk is still full: the spool keeps all

        filler.unlink()
        again = Service(config, pool=RecordingPool())
        again.start()
        try:
            assert again.store_health()["pending"] == 0
            assert not (tmp_path / "spool").exists()
        finally:
            again.stop()
        incidents, evidence, alerts = _stored(database)
        assert incidents == {"a": False, "b": False}  # b closed by the restart
        assert evidence == 1
        assert alerts == [
            ("incident.closed", "a"),
            ("incident.closed", "b"),
            ("incident.opened", "a"),
            ("incident.opened", "b"),
        ]


def test_a_deleted_database_file_is_restored_with_everything_in_it(tmp_path: Path):
    path = tmp_path / "avwatch.db"
    database = f"sqlite:///{path}"
    service = Service(_config(database, tmp_path / "spool"), pool=RecordingPool())
    service.start()
    try:
        service._on_message(black_update("a", open_=True))
        for leftover in ("", "-wal", "-shm"):  # rm avwatch.db*
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}{leftover}")
        service._on_message(black_update("b", open_=True))  # into the deleted file
        time.sleep(1.1)  # the file is looked at once a second
        service._on_message(ok_status())
        assert "deleted: restored" in (service.store_health()["file_event"] or "")
        service._on_message(black_update("c", open_=True))  # into the restored file
        assert service.store_health()["ok"]
    finally:
        service.stop()
    incidents, _, _ = _stored(database)
    assert incidents == {"a": False, "b": False, "c": False}


def test_a_database_file_replaced_by_another_is_taken_and_said(tmp_path: Path):
    path = tmp_path / "avwatch.db"
    database = f"sqlite:///{path}"
    service = Service(_config(database, tmp_path / "spool"), pool=RecordingPool())
    service.start()
    try:
        service._on_message(black_update("a", open_=True))
        backup = tmp_path / "backup.db"
        Store.open(f"sqlite:///{backup}").close()  # an empty avwatch database
        shutil.move(backup, path)  # put back by hand
        time.sleep(1.1)
        service._on_message(ok_status())
        assert "replaced" in (service.store_health()["file_event"] or "")
        service._on_message(black_update("b", open_=True))
    finally:
        service.stop()
    incidents, _, _ = _stored(database)
    assert incidents == {"b": False}
