"""The alert outbox against a real HTTP receiver: signed, retried, durable."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from servicekit import WebhookReceiver, wait_for
from sqlalchemy import select

from avwatch.service.alerts import OutboxDispatcher, alert_rows
from avwatch.service.config import HookSpec, ServiceConfig, WebhookSpec
from avwatch.service.messages import IncidentUpdate
from avwatch.service.store import OutboxRow, Store

INCIDENT = {"id": "abc", "stream": "news", "type": "black", "severity": "error"}


def _config(url: str, **webhook: object) -> ServiceConfig:
    return ServiceConfig(webhooks=[WebhookSpec(url=url, **webhook)])


def test_rows_follow_severity_and_type_filters():
    config = ServiceConfig(
        webhooks=[
            WebhookSpec(url="http://a/", min_severity="critical"),
            WebhookSpec(url="http://b/", types=["silence"]),
            WebhookSpec(url="http://c/"),
        ],
        hooks=[HookSpec(stream="news", type="black", url="http://backup/switch")],
    )
    opened = [row.target for row in alert_rows(config, "opened", INCIDENT)]
    assert opened == ["http://c/", "http://backup/switch"]
    closed = [row.target for row in alert_rows(config, "closed", INCIDENT)]
    assert closed == ["http://c/"]  # remediation only on open


def test_delivered_signed_and_marked(tmp_path: Path):
    store = Store.open(f"sqlite:///{tmp_path / 'a.db'}")
    receiver = WebhookReceiver()
    config = _config(receiver.url, secret="k3y")
    with store.session() as s:
        s.add_all(alert_rows(config, "opened", INCIDENT))
    dispatcher = OutboxDispatcher(store, config.webhooks, poll_s=0.05)
    dispatcher.start()
    try:
        wait_for("the webhook", lambda: receiver.received, 10)
    finally:
        dispatcher.stop()
        receiver.close()
    headers, body = receiver.received[0]
    assert json.loads(body)["event"] == "incident.opened"
    assert (
        headers["X-Avwatch-Signature"]
        == "sha256=" + hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    )
    assert dispatcher.pending() == 0


def test_receiver_down_then_up_gets_it_later_even_across_a_restart(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    receiver = WebhookReceiver()
    receiver.fail_with = 503
    store = Store.open(url)
    with store.session() as s:
        s.add_all(alert_rows(_config(receiver.url), "opened", INCIDENT))
    first = OutboxDispatcher(store, poll_s=0.05)
    first.deliver_due()  # one attempt, refused
    with store.session() as s:
        row = s.scalars(select(OutboxRow)).one()
        assert (row.attempts, row.delivered_at, row.last_error) == (1, None, "HTTP 503")
        row.next_attempt_at = row.created_at  # skip the backoff wait for the test
    store.close()
    # avwatch restarts; the receiver is back.
    receiver.fail_with = None
    store = Store.open(url)
    second = OutboxDispatcher(store, poll_s=0.05)
    second.start()
    try:
        wait_for("the retried webhook", lambda: receiver.received, 10)
    finally:
        second.stop()
        receiver.close()
    assert [json.loads(b)["incident"]["id"] for _, b in receiver.received] == ["abc"]
    with store.session() as s:
        assert s.scalars(select(OutboxRow)).one().attempts == 2


def test_unreachable_receiver_backs_off(tmp_path: Path):
    store = Store.open(f"sqlite:///{tmp_path / 'c.db'}")
    with store.session() as s:
        s.add_all(alert_rows(_config("http://127.0.0.1:9/nothing"), "opened", INCIDENT))
    dispatcher = OutboxDispatcher(store)
    dispatcher.deliver_due()
    dispatcher.deliver_due()  # not due yet: no second attempt
    with store.session() as s:
        row = s.scalars(select(OutboxRow)).one()
    assert row.attempts == 1
    assert row.delivered_at is None
    assert "ConnectError" in (row.last_error or "")


def _flapping_service(tmp_path: Path) -> Any:
    """A service whose messages are given by hand (no workers), on the same SQLite file
    each time it is made, with one webhook."""
    from avwatch.service.core import Service

    config = ServiceConfig(
        database=f"sqlite:///{tmp_path / 'f.db'}",
        flap_window_s=60,
        webhooks=[WebhookSpec(url="http://127.0.0.1:9/x")],
    )
    service = Service(config)
    service.store = Store.open(service.database)
    return service


def _black(n: int, *, open: bool) -> IncidentUpdate:
    return IncidentUpdate(
        id=f"i{n}",
        stream=INCIDENT["stream"],
        type=INCIDENT["type"],
        severity=INCIDENT["severity"],
        detector="black",
        start=float(n),
        end=None if open else n + 0.5,
        started_at=1_800_000_000.0 + n,
        ended_at=None if open else 1_800_000_000.5 + n,
        open=open,
    )


def _alerted(store: Store) -> list[tuple[str, str]]:
    with store.session() as s:
        bodies = [json.loads(r.body) for r in s.scalars(select(OutboxRow))]
    return [(body["event"].removeprefix("incident."), body["incident"]["id"]) for body in bodies]


def test_a_flapping_incident_type_is_stored_but_not_alerted(tmp_path: Path):
    from avwatch.service.alerts import FLAP_OPENS

    service = _flapping_service(tmp_path)
    for n in range(FLAP_OPENS + 2):
        service._on_message(_black(n, open=True))
    total, rows = service.store.incidents()
    assert total == FLAP_OPENS + 2  # every incident is kept
    flagged = sorted(r.id for r in rows if r.details.get("flapping"))
    assert flagged == [f"i{n}" for n in range(FLAP_OPENS, FLAP_OPENS + 2)]
    assert _alerted(service.store) == [("opened", f"i{n}") for n in range(FLAP_OPENS)]


def test_a_held_back_incident_closes_without_an_alert_after_a_restart_too(tmp_path: Path):
    from avwatch.service.alerts import FLAP_OPENS

    service = _flapping_service(tmp_path)
    for n in range(FLAP_OPENS + 2):
        service._on_message(_black(n, open=True))
    restarted = _flapping_service(tmp_path)  # a new service: it keeps nothing in memory
    for n in range(FLAP_OPENS + 2):
        restarted._on_message(_black(n, open=False))
    closes = [incident for event, incident in _alerted(restarted.store) if event == "closed"]
    assert closes == [f"i{n}" for n in range(FLAP_OPENS)]
    _, rows = restarted.store.incidents()
    assert not any(r.open for r in rows)
    flagged = sorted(r.id for r in rows if r.details.get("flapping"))  # still, once closed
    assert flagged == [f"i{n}" for n in range(FLAP_OPENS, FLAP_OPENS + 2)]


def test_an_open_asked_about_again_is_answered_as_the_first_time():
    # A store write retried after an outage asks again about the same open.
    from avwatch.service.alerts import FLAP_OPENS, FlapGuard
    from avwatch.service.store import IncidentRow

    held: list[int] = []
    guard = FlapGuard(60.0, lambda: held.append(1))

    def row(n: int) -> IncidentRow:
        return IncidentRow(id=f"i{n}", stream="news", type="black", details={})

    first = row(0)
    for _ in range(FLAP_OPENS + 2):  # the same open, over and over
        assert guard.holds_back(first, "opened") is False
    answers = [guard.holds_back(row(n), "opened") for n in range(1, FLAP_OPENS + 2)]
    assert answers == [False] * (FLAP_OPENS - 1) + [True, True]
    again = row(FLAP_OPENS)  # held back the first time: held back again, and flagged
    assert guard.holds_back(again, "opened") is True and again.details == {"flapping": True}
    assert len(held) == 2
