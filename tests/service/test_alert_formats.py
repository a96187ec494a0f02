"""Slack, Teams and PagerDuty alerts, sent through the outbox to local receivers that
refuse a body unless it has the shape the real service documents."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from servicekit import WebhookReceiver, wait_for
from sqlalchemy import select

from avwatch.service.alerts import OutboxDispatcher, alert_rows
from avwatch.service.config import ServiceConfig, WebhookSpec
from avwatch.service.store import OutboxRow, Store

OPENED = {
    "id": "5f0c",
    "stream": "news",
    "type": "black",
    "key": "",
    "severity": "critical",
    "started_at": "2026-12-03T21:00:00+00:00",
    "ended_at": None,
    "details": {"mean_luma": 16.2},
}
CLOSED = {**OPENED, "ended_at": "2026-12-03T21:00:09+00:00"}
LINK = "https://avwatch.example/#/incidents/5f0c"

# -- the shapes, as each service's documentation gives them ----------------------------
SLACK_BLOCKS = {"section", "actions", "context", "divider", "header", "image"}
ADAPTIVE_ELEMENTS = {"TextBlock", "FactSet", "ColumnSet", "Image", "Container"}
PAGERDUTY_SEVERITIES = {"critical", "error", "warning", "info"}


def slack_fault(body: dict[str, Any]) -> str | None:
    """Slack incoming webhook: ``text`` (the notification), optional Block Kit blocks."""
    if not isinstance(body.get("text"), str) or not body["text"]:
        return "no text"
    for block in body.get("blocks", []):
        if block["type"] not in SLACK_BLOCKS:
            return f"unknown block {block['type']}"
        if "text" in block and (
            block["text"]["type"] not in ("mrkdwn", "plain_text")
            or len(block["text"]["text"]) > 3000
        ):
            return "bad section text"
        if len(block.get("fields", [])) > 10 or any(
            len(f["text"]) > 2000 for f in block.get("fields", [])
        ):
            return "bad fields"
        for element in block.get("elements", []):
            if element["type"] == "button" and (
                element["text"]["type"] != "plain_text" or len(element["text"]["text"]) > 75
            ):
                return "bad button"
    return None


def teams_fault(body: dict[str, Any]) -> str | None:
    """Teams incoming webhook (Workflows): a message whose attachment is an Adaptive Card."""
    if body.get("type") != "message" or len(body["attachments"]) != 1:
        return "not a message with one attachment"
    attachment = body["attachments"][0]
    if attachment["contentType"] != "application/vnd.microsoft.card.adaptive":
        return "not an adaptive card"
    card = attachment["content"]
    if card["type"] != "AdaptiveCard" or not card["version"] or not card["body"]:
        return "bad card"
    if any(element["type"] not in ADAPTIVE_ELEMENTS for element in card["body"]):
        return "unknown card element"
    if any(action["type"] != "Action.OpenUrl" or not action["url"] for action in card["actions"]):
        return "bad action"
    return None


def pagerduty_fault(body: dict[str, Any]) -> str | None:
    """Events API v2: routing key, action, dedup key (at most 255); a trigger's payload
    with summary (at most 1024), source and one of four severities."""
    if not isinstance(body.get("routing_key"), str) or len(body["routing_key"]) != 32:
        return "bad routing_key"
    if body["event_action"] not in ("trigger", "acknowledge", "resolve"):
        return "bad event_action"
    if not body.get("dedup_key") or len(body["dedup_key"]) > 255:
        return "bad dedup_key"
    if body["event_action"] == "trigger":
        payload = body["payload"]
        if not payload["summary"] or len(payload["summary"]) > 1024 or not payload["source"]:
            return "bad summary or source"
        if payload["severity"] not in PAGERDUTY_SEVERITIES:
            return "bad severity"
        if "timestamp" in payload:
            dt.datetime.fromisoformat(payload["timestamp"])
    return None


def _deliver(tmp_path: Path, webhooks: list[WebhookSpec], changes: list[tuple[str, dict]]) -> Store:
    config = ServiceConfig(webhooks=webhooks, public_url="https://avwatch.example/")
    store = Store.open(f"sqlite:///{tmp_path / 'alerts.db'}")
    with store.session() as s:
        for event, incident in changes:
            s.add_all(alert_rows(config, event, incident))
    dispatcher = OutboxDispatcher(store, config.webhooks, poll_s=0.05)
    dispatcher.start()
    try:
        wait_for("every alert delivered", lambda: dispatcher.pending() == 0, 10)
    finally:
        dispatcher.stop()
    return store


@pytest.mark.parametrize(("format_", "fault"), [("slack", slack_fault), ("teams", teams_fault)])
def test_chat_messages_carry_stream_type_severity_times_and_the_link(tmp_path, format_, fault):
    receiver = WebhookReceiver(check=fault)
    try:
        _deliver(
            tmp_path,
            [WebhookSpec(url=receiver.url, format=format_)],
            [("opened", OPENED), ("closed", CLOSED)],
        )
    finally:
        receiver.close()
    assert receiver.refused == []
    opened, closed = (json.dumps(event) for event in receiver.events())
    for expected in ("news", "black", "critical", "2026-12-03T21:00:00+00:00", LINK):
        assert expected in opened
    assert "resolved" in closed and "2026-12-03T21:00:09+00:00" in closed


def test_pagerduty_triggers_and_resolves_under_one_dedup_key_and_stores_no_routing_key(
    tmp_path,
):
    receiver = WebhookReceiver(check=pagerduty_fault)
    key = "R0UT1NGKEY0000000000000000000001"
    try:
        store = _deliver(
            tmp_path,
            [WebhookSpec(url=receiver.url, format="pagerduty", routing_key=key)],
            [("opened", OPENED), ("closed", CLOSED)],
        )
    finally:
        receiver.close()
    assert receiver.refused == []
    trigger, resolve = receiver.events()
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] == "avwatch-5f0c"
    assert trigger["routing_key"] == resolve["routing_key"] == key
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["links"][0]["href"] == LINK
    with store.session() as s:
        assert all(key not in row.body for row in s.scalars(select(OutboxRow)))


def test_two_pagerduty_services_each_get_their_own_key(tmp_path):
    receiver = WebhookReceiver(check=pagerduty_fault)
    keys = ["A" * 32, "B" * 32]
    hooks = [
        WebhookSpec(name="video", url=receiver.url, format="pagerduty", routing_key=keys[0]),
        WebhookSpec(name="audio", url=receiver.url, format="pagerduty", routing_key=keys[1]),
    ]
    try:
        _deliver(tmp_path, hooks, [("opened", OPENED)])
    finally:
        receiver.close()
    assert sorted(event["routing_key"] for event in receiver.events()) == keys


def test_webhook_config_errors_say_what_is_missing():
    with pytest.raises(ValidationError, match="needs its routing_key"):
        WebhookSpec(format="pagerduty")
    with pytest.raises(ValidationError, match="only for format pagerduty"):
        WebhookSpec(url="http://a/", routing_key="x")
    with pytest.raises(ValidationError, match="needs its url"):
        WebhookSpec(format="slack")
    with pytest.raises(ValidationError, match="give each a name"):
        ServiceConfig(
            webhooks=[
                WebhookSpec(format="pagerduty", routing_key="A" * 32),
                WebhookSpec(format="pagerduty", routing_key="B" * 32),
            ]
        )
    assert WebhookSpec(format="pagerduty", routing_key="k").url.startswith("https://events.")


def test_the_generic_body_links_to_the_incident_and_remediation_stays_generic():
    config = ServiceConfig(port=9000, webhooks=[WebhookSpec(url="http://a/")])
    (row,) = alert_rows(config, "opened", OPENED)
    body = json.loads(row.body)
    assert body["event"] == "incident.opened" and body["incident"]["id"] == "5f0c"
    assert body["link"] == "http://127.0.0.1:9000/#/incidents/5f0c"


def test_a_webhook_url_is_logged_without_its_secret_path(tmp_path, caplog):
    slack = "http://127.0.0.1:9/services/T000/B000/s3cr3tpath"
    store = Store.open(f"sqlite:///{tmp_path / 'log.db'}")
    config = ServiceConfig(webhooks=[WebhookSpec(url=slack, format="slack")])
    with store.session() as s:
        s.add_all(alert_rows(config, "opened", OPENED))
    OutboxDispatcher(store, config.webhooks).deliver_due()  # refused: nothing listens
    assert "webhook http://127.0.0.1/…" in caplog.text
    assert "s3cr3tpath" not in caplog.text
