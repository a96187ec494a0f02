"""The database goes down under the service (a real PostgreSQL server stopped and
started again): no incident change and no alert is lost, and /healthz says so."""

from __future__ import annotations

import json

from servicekit import RecordingPool, WebhookReceiver, black_update, ok_status, postgres, wait_for
from sqlalchemy import select

from avwatch.service.config import ServiceConfig
from avwatch.service.core import Service
from avwatch.service.store import IncidentRow, OutboxRow


def test_changes_made_while_the_database_is_down_are_stored_when_it_is_back(tmp_path):
    receiver = WebhookReceiver()
    with postgres() as database:
        config = ServiceConfig(
            database=database.url,
            webhooks=[{"url": receiver.url}],
            spool_file=str(tmp_path / "spool"),
        )
        service = Service(config, pool=RecordingPool())
        service.start()
        try:
            service._on_message(black_update("a", open_=True))
            assert service.store_health()["ok"]

            database.stop()
            service._on_message(black_update("a", open_=False))  # closes while the store is down
            service._on_message(black_update("b", open_=True))
            health = service.store_health()
            assert not health["ok"] and health["pending"] == 2 and health["spooled"] == 2
            assert "OperationalError" in health["error"]
            assert (tmp_path / "spool").exists()  # a stop now would lose nothing

            database.start()
            service._on_message(ok_status())  # any message tries the kept changes again
            health = service.store_health()
            assert health["ok"] and health["pending"] == 0 and health["spooled"] == 0
            assert not (tmp_path / "spool").exists()
            assert service.store is not None
            with service.store.session() as s:
                rows = {r.id: r.open for r in s.scalars(select(IncidentRow))}
                alerts = [json.loads(r.body) for r in s.scalars(select(OutboxRow))]
            assert rows == {"a": False, "b": True}
            expected = [
                ("incident.closed", "a"),
                ("incident.opened", "a"),
                ("incident.opened", "b"),
            ]
            assert sorted((a["event"], a["incident"]["id"]) for a in alerts) == expected

            # And every alert reaches its receiver: at least once (one delivered as the
            # database went down may come again; X-Avwatch-Delivery tells a repeat).
            def delivered() -> list[tuple[str, str]]:
                unique = {h["X-Avwatch-Delivery"]: json.loads(b) for h, b in receiver.received}
                return sorted((e["event"], e["incident"]["id"]) for e in unique.values())

            wait_for("three alerts delivered", lambda: delivered() == expected, 30)
        finally:
            service.stop()
            receiver.close()
