"""Where the service keeps what must survive a restart: streams, incidents,
evidence, and the alert outbox.

SQLAlchemy, so that the embedded default (an SQLite file in WAL mode) and
production (a PostgreSQL URL) are the same code. The schema is owned by the
Alembic migrations in ``avwatch/service/migrations``; ``Store.open`` brings any
database up to the latest one before use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    delete,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from avwatch.errors import ConfigError
from avwatch.service.messages import IncidentUpdate
from avwatch.service.store_file import WatchedFile

__all__ = [
    "EvidenceRow",
    "IncidentRow",
    "OutboxRow",
    "Store",
    "StreamRow",
    "one_line",
    "utc",
]


MIGRATIONS = Path(__file__).parent / "migrations"


def utc(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        dt.datetime: DateTime(timezone=True),
    }


class StreamRow(Base):
    __tablename__ = "streams"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(comment="the StreamSpec as JSON")
    created_at: Mapped[dt.datetime] = mapped_column(default=now_utc)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now_utc, onupdate=now_utc)


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    stream: Mapped[str] = mapped_column(String(63), index=True)
    type: Mapped[str] = mapped_column(String(40), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    detector: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(80), default="")
    start: Mapped[float] = mapped_column(Float, comment="media seconds")
    end: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[dt.datetime] = mapped_column(index=True)
    ended_at: Mapped[dt.datetime | None]
    open: Mapped[bool] = mapped_column(Boolean, index=True)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    acknowledged_at: Mapped[dt.datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(80))

    @property
    def flapping(self) -> bool:
        """Whether its alerts are held back (it opened while its type flapped)."""
        return bool((self.details or {}).get("flapping"))

    def update_from(self, update: IncidentUpdate) -> None:
        """Take what a monitor says of the incident now."""
        self.type = update.type
        self.severity = update.severity
        self.detector = update.detector
        self.key = update.key
        self.start = update.start
        self.end = update.end
        self.started_at = utc(update.started_at) or now_utc()
        self.ended_at = utc(update.ended_at)
        self.open = update.open
        # The service's own mark (alerts held back) outlives the monitor's updates.
        flapping = self.flapping
        self.details = dict(update.details) | ({"flapping": True} if flapping else {})

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stream": self.stream,
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "severity": self.severity,
            "detector": self.detector,
            "key": self.key,
            "details": self.details,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "open": self.open,
            "acknowledged_at": _iso(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
        }


class EvidenceRow(Base):
    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(80))
    media_type: Mapped[str] = mapped_column(String(80))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=now_utc)


class OutboxRow(Base):
    """An alert waiting to be delivered: written in the same transaction as the
    incident change that caused it, so it survives a restart or a dead receiver."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(Text, comment="webhook URL")
    body: Mapped[str] = mapped_column(Text, comment="the JSON sent")
    webhook: Mapped[str | None] = mapped_column(
        Text, comment="WebhookSpec.key; none for remediation URLs"
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=now_utc, index=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=now_utc)


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; they were stored as UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        database = engine.url.database
        self._file = (
            WatchedFile(Path(database))
            if engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
            else None
        )

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect, migrate to the latest schema, and return the store."""
        try:
            engine = create_engine(url, pool_pre_ping=True)
        except (SQLAlchemyError, ValueError, ImportError) as exc:
            raise ConfigError(f"database {_shown(url)}: {one_line(exc)}") from exc
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        try:
            with engine.begin() as connection:
                config = AlembicConfig()
                config.set_main_option("script_location", str(MIGRATIONS))
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except SQLAlchemyError as exc:
            raise ConfigError(f"database {_shown(url)}: {one_line(exc)}") from exc
        return cls(engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()
        if self._file is not None:
            self._file.close()

    def check_file(self) -> str | None:
        """For an SQLite file: None while it is the file opened; else what was done about
        it (see ``WatchedFile``). Call it from the thread that writes."""
        if self._file is None or not self._file.changed():
            return None
        self.engine.dispose()  # connections to the old file
        return self._file.put_right()

    def prune_evidence(self, keep_s: float, max_bytes: int) -> int:
        """Delete evidence older than ``keep_s``, then the oldest until what is left
        holds at most ``max_bytes``; returns how many were deleted."""
        cutoff = now_utc() - dt.timedelta(seconds=keep_s)
        with self.session() as s:
            aged = s.scalars(select(EvidenceRow.id).where(EvidenceRow.created_at < cutoff)).all()
            if aged:
                s.execute(delete(EvidenceRow).where(EvidenceRow.id.in_(aged)))
            sizes = s.execute(
                select(EvidenceRow.id, func.length(EvidenceRow.data)).order_by(
                    EvidenceRow.created_at.desc(), EvidenceRow.id.desc()
                )
            ).all()
            total, over = 0, []
            for row_id, size in sizes:
                total += size or 0
                if total > max_bytes:
                    over.append(row_id)
            if over:
                s.execute(delete(EvidenceRow).where(EvidenceRow.id.in_(over)))
            return len(aged) + len(over)

    # -- queries the API and the service share -----------------------------------------
    def incidents(
        self,
        *,
        stream: str | None = None,
        type_: str | None = None,
        open_: bool | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, Sequence[IncidentRow]]:
        query = select(IncidentRow)
        if stream is not None:
            query = query.where(IncidentRow.stream == stream)
        if type_ is not None:
            query = query.where(IncidentRow.type == type_)
        if open_ is not None:
            query = query.where(IncidentRow.open == open_)
        if since is not None:
            query = query.where(IncidentRow.started_at >= since)
        if until is not None:
            query = query.where(IncidentRow.started_at < until)
        with self.session() as s:
            total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = s.scalars(
                query.order_by(IncidentRow.started_at.desc(), IncidentRow.id)
                .limit(limit)
                .offset(offset)
            ).all()
        return total, rows


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL: the API reads while the service writes; NORMAL sync is safe with WAL.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _shown(url: str) -> str:
    """The URL as it may be printed: its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        return "(an unparsable URL)"


def one_line(exc: BaseException) -> str:
    """The driver's own message on one line, without SQLAlchemy's link to its docs."""
    cause = getattr(exc, "orig", None) or exc
    return f"{type(cause).__name__}: {' '.join(str(cause).split())}"
