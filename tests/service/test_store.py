"""The store: migrations match the models; incident queries filter and page."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from servicekit import postgres_server
from sqlalchemy import select

from avwatch.errors import ConfigError
from avwatch.service.store import MIGRATIONS, Base, EvidenceRow, IncidentRow, Store, StreamRow


def test_migrated_schema_is_exactly_the_models(tmp_path: Path):
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_opening_twice_migrates_once(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = Store.open(url)
    with first.session() as s:
        s.add(StreamRow(id="kept", spec={"id": "kept", "url": "x.ts"}))
    first.close()
    again = Store.open(url)  # finds the schema at head: nothing to run, nothing lost
    with again.engine.connect() as connection:
        versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    assert versions == [(ScriptDirectory(str(MIGRATIONS)).get_current_head(),)]
    with again.session() as s:
        assert s.get(StreamRow, "kept") is not None
    again.close()


def test_incident_filters_and_pages(tmp_path: Path):
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with store.session() as s:
        for i in range(25):
            s.add(
                IncidentRow(
                    id=f"i{i:02d}",
                    stream="a" if i % 2 else "b",
                    type="black" if i < 20 else "silence",
                    severity="error",
                    detector="black",
                    start=float(i),
                    started_at=t0 + dt.timedelta(minutes=i),
                    open=i == 24,
                    details={},
                )
            )
    total, page = store.incidents(limit=10, offset=10)
    assert total == 25
    assert [r.id for r in page] == [f"i{i:02d}" for i in range(14, 4, -1)]  # newest first
    assert store.incidents(stream="a")[0] == 12
    assert store.incidents(type_="silence")[0] == 5
    assert [r.id for r in store.incidents(open_=True)[1]] == ["i24"]
    since = t0 + dt.timedelta(minutes=20)
    assert store.incidents(since=since, until=since + dt.timedelta(minutes=2))[0] == 2


def test_bad_database_url_is_a_config_error():
    with pytest.raises(ConfigError, match="database"):
        Store.open("nosuchdialect://x")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite:////no/such/dir/s.db", "OperationalError: unable to open database file"),
        ("postgresql+psycopg://u:secret@127.0.0.1:9/x", "u:***@127.0.0.1:9/x: OperationalError"),
    ],
    ids=["sqlite-no-dir", "postgres-down"],
)
def test_a_database_that_cannot_be_opened_is_one_line_without_its_password(url, says):
    with pytest.raises(ConfigError, match=re.escape(says)) as raised:
        Store.open(url)
    assert "\n" not in str(raised.value) and "secret" not in str(raised.value)
    assert "sqlalche.me" not in str(raised.value)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'e.db'}"
    else:
        with postgres_server() as url:
            yield url


def test_evidence_retention_by_age_then_size_keeps_the_newest(store_url: str):
    store = Store.open(store_url)
    now = dt.datetime.now(dt.UTC)
    with store.session() as s:
        s.add(
            IncidentRow(
                id="i",
                stream="a",
                type="black",
                severity="error",
                detector="black",
                start=0.0,
                started_at=now,
                open=False,
            )
        )
        s.flush()
        ages = {"ancient": 40, "old": 3, "older": 4, "new": 1, "newest": 0}  # days
        for name, days in ages.items():
            s.add(
                EvidenceRow(
                    incident="i",
                    name=name,
                    media_type="image/png",
                    data=b"x" * 1000,
                    created_at=now - dt.timedelta(days=days),
                )
            )
    # 30 days kept: "ancient" goes by age. 2500 bytes: newest first, "newest" and "new"
    # fit (2000), "old" and "older" do not.
    assert store.prune_evidence(30 * 86400, 2500) == 3
    with store.session() as s:
        assert sorted(s.scalars(select(EvidenceRow.name)).all()) == ["new", "newest"]
    assert store.prune_evidence(30 * 86400, 2500) == 0  # nothing more to do
    store.close()
