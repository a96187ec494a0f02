"""What an alert looks like on the wire, per receiver: avwatch's own JSON, a Slack or
Teams incoming-webhook message, or a PagerDuty Events API v2 event.

Each format is built from the incident as the API shows it, plus a link to it in the
dashboard. PagerDuty's routing key is a credential: it is not in the body built here
(which is stored in the outbox) but added by the dispatcher when it sends.
"""

from __future__ import annotations

from typing import Any, Literal

from avwatch import __version__

__all__ = ["PAGERDUTY_EVENTS_URL", "WebhookFormat", "render", "with_routing_key"]

WebhookFormat = Literal["generic", "slack", "teams", "pagerduty"]

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SUMMARY_MAX = 1024  # characters, as the Events API v2 takes them
SLACK_EMOJI = {"critical": ":red_circle:", "error": ":large_orange_circle:"}
TEAMS_COLOUR = {"critical": "attention", "error": "warning", "warning": "warning"}


def render(
    format_: WebhookFormat, event: str, incident: dict[str, Any], link: str
) -> dict[str, Any]:
    """The body of one alert (``event``: "opened" or "closed")."""
    if format_ == "slack":
        return _slack(event, incident, link)
    if format_ == "teams":
        return _teams(event, incident, link)
    if format_ == "pagerduty":
        return _pagerduty(event, incident, link)
    return {
        "event": f"incident.{event}",
        "incident": incident,
        "link": link,
        "avwatch_version": __version__,
    }


def with_routing_key(body: dict[str, Any], routing_key: str) -> dict[str, Any]:
    return {"routing_key": routing_key, **body}


def _headline(event: str, incident: dict[str, Any]) -> str:
    state = "resolved" if event == "closed" else incident["severity"]
    key = f" ({incident['key']})" if incident.get("key") else ""
    return f"[{state}] {incident['type']}{key} on {incident['stream']}"


def _facts(incident: dict[str, Any]) -> list[tuple[str, str]]:
    facts = [
        ("Stream", incident["stream"]),
        ("Type", incident["type"]),
        ("Severity", incident["severity"]),
        ("Started", incident.get("started_at") or "-"),
    ]
    if incident.get("ended_at"):
        facts.append(("Ended", incident["ended_at"]))
    return facts


def _slack(event: str, incident: dict[str, Any], link: str) -> dict[str, Any]:
    emoji = ":white_check_mark:" if event == "closed" else SLACK_EMOJI.get(incident["severity"])
    headline = f"{emoji or ':warning:'} {_headline(event, incident)}"
    fields = [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in _facts(incident)]
    return {
        "text": f"{headline}: {link}",  # the notification, and clients without blocks
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}},
            {"type": "section", "fields": fields},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in avwatch"},
                        "url": link,
                    }
                ],
            },
        ],
    }


def _teams(event: str, incident: dict[str, Any], link: str) -> dict[str, Any]:
    colour = "good" if event == "closed" else TEAMS_COLOUR.get(incident["severity"], "default")
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": _headline(event, incident),
                "weight": "Bolder",
                "size": "Medium",
                "color": colour,
                "wrap": True,
            },
            {
                "type": "FactSet",
                "facts": [{"title": name, "value": value} for name, value in _facts(incident)],
            },
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Open in avwatch", "url": link}],
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def _pagerduty(event: str, incident: dict[str, Any], link: str) -> dict[str, Any]:
    # One dedup key for the trigger and the resolve of an incident: PagerDuty pairs them.
    dedup_key = f"avwatch-{incident['id']}"
    if event == "closed":
        return {"event_action": "resolve", "dedup_key": dedup_key}
    payload = {
        "summary": _headline(event, incident)[:PAGERDUTY_SUMMARY_MAX],
        "source": incident["stream"],
        "severity": incident["severity"],  # avwatch's four are PagerDuty's four
        "component": incident["stream"],
        "class": incident["type"],
        "custom_details": incident,
    }
    if incident.get("started_at"):
        payload["timestamp"] = incident["started_at"]
    return {
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": payload,
        "links": [{"href": link, "text": "Open in avwatch"}],
        "client": "avwatch",
        "client_url": link,
    }
