"""An SQLite store's file, watched: deleted or replaced under a running service.

A deleted SQLite file goes on taking writes through the connections that had it
open, and all of them are gone at the next restart, silently. ``WatchedFile``
keeps one connection of its own open on the file it was given, so that the
deleted file can still be read: when the path no longer leads to it (nothing
there, or an empty database that a new connection made in its place), the
whole database is copied back to the path from that connection (SQLite's
online backup). A path that leads to another database (a backup put back by
hand, without its write-ahead log) is taken as the operator's choice: the
service goes on with it, and says so.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

__all__ = ["WatchedFile"]


class WatchedFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._open()

    def _open(self) -> None:
        self._keep = sqlite3.connect(self.path, check_same_thread=False)
        # A read opens the file and its write-ahead log: both stay readable if deleted.
        self._keep.execute("SELECT count(*) FROM sqlite_master").fetchone()
        stat = os.stat(self.path)
        self._identity = (stat.st_dev, stat.st_ino)

    def changed(self) -> bool:
        """Does the path lead somewhere else than the file opened?"""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (stat.st_dev, stat.st_ino) != self._identity

    def put_right(self) -> str:
        """After ``changed``, with every other connection closed: restore the deleted
        file, or take the new one; returns what happened, to be logged."""
        # A write-ahead log at the path is the old file's (SQLite keeps it when its file
        # moves) or an empty database's: read with another file, it would corrupt it.
        for leftover in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{leftover}")
        if self.path.exists() and _has_tables(self.path):
            self._keep.close()
            self._open()
            return f"the database file {self.path} was replaced: the service now writes to it"
        partial = self.path.with_name(self.path.name + ".restoring")
        target = sqlite3.connect(partial)
        try:
            self._keep.backup(target)
        finally:
            target.close()
        os.replace(partial, self.path)
        self._keep.close()
        self._open()
        return f"the database file {self.path} was deleted: restored from the open file"

    def close(self) -> None:
        self._keep.close()


def _has_tables(path: Path) -> bool:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            tables: int = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            return tables > 0
    except sqlite3.DatabaseError:
        return True  # not a database at all: not ours to overwrite
