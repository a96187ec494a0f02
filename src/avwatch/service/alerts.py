"""Alerts: webhooks delivered from a durable outbox, and remediation hooks.

An alert is a row in the outbox, written in the same transaction as the
incident change that caused it. ``OutboxDispatcher`` POSTs due rows, signs
each body with HMAC-SHA256 when the target has a secret
(``X-Avwatch-Signature: sha256=<hex>``), marks what was delivered, and retries
the rest with exponential backoff — so an alert survives a restart of avwatch
and a receiver that is down. ``X-Avwatch-Delivery`` carries the row id, for
receivers that want to drop a repeat. Secrets stay in the config, never in the
store.

A remediation hook runs when an incident of its type opens on its stream: a URL
goes through the same outbox; a command runs with the incident JSON on stdin.

``FlapGuard`` holds back the alerts of an incident type that keeps coming back
on a stream: those incidents are stored, flagged ``flapping``, not alerted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import subprocess
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select

from avwatch import __version__
from avwatch.service.alert_formats import render, with_routing_key
from avwatch.service.config import HookSpec, ServiceConfig, WebhookSpec
from avwatch.service.store import IncidentRow, OutboxRow, Store, now_utc
from avwatch.types import Severity

__all__ = ["FLAP_OPENS", "FlapGuard", "OutboxDispatcher", "alert_rows", "run_command_hook", "sign"]

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0
DELIVERY_TIMEOUT_S = 5.0
# A stream whose incidents of one type open this many times within
# ``flap_window_s`` is flapping: later opens are stored but not alerted.
FLAP_OPENS = 3


class FlapGuard:
    def __init__(self, window_s: float, on_held_back: Callable[[], None]) -> None:
        self.window_s = window_s
        self.on_held_back = on_held_back
        # Per stream and type, the opens within the window: (when, incident id, held back).
        self._opens: dict[tuple[str, str], deque[tuple[float, str, bool]]] = defaultdict(deque)

    def holds_back(self, row: IncidentRow, event: str) -> bool:
        """Whether the alert of this incident's ``event`` ("opened", "closed") is held
        back; an open that makes the stream flap is flagged in the row's details. Asked
        again for the same open (its store write retried), it answers as the first time.
        A close is held back where the open was: the row's flag says so, kept in the
        store, so that nothing here grows with the incidents and a restart forgets none."""
        if event == "closed":
            return row.flapping
        opens = self._opens[(row.stream, row.type)]
        now = time.monotonic()
        while opens and now - opens[0][0] > self.window_s:
            opens.popleft()
        held = next((h for _, incident, h in opens if incident == row.id), None)
        if held is None:
            held = len(opens) >= FLAP_OPENS
            opens.append((now, row.id, held))
            if held:
                self.on_held_back()
        if held:
            row.details = {**row.details, "flapping": True}
        return held


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def alert_rows(config: ServiceConfig, event: str, incident: dict[str, Any]) -> list[OutboxRow]:
    """Outbox rows for one incident change (``event``: "opened" or "closed"), each
    webhook's in its own format."""
    link = incident_link(config, incident["id"])
    severity = Severity(incident["severity"])
    rows = []
    for hook in config.webhooks:
        if severity.rank < hook.min_severity.rank:
            continue
        if hook.types is not None and incident["type"] not in hook.types:
            continue
        body = json.dumps(render(hook.format, event, incident, link), sort_keys=True)
        rows.append(OutboxRow(target=hook.url, body=body, webhook=hook.key))
    if event == "opened":
        body = json.dumps(render("generic", event, incident, link), sort_keys=True)
        for remedy in matching_hooks(config.hooks, incident):
            if remedy.url is not None:
                rows.append(OutboxRow(target=remedy.url, body=body))
    return rows


def shown(url: str) -> str:
    """A webhook URL as it may be logged: Slack's and Teams' carry their secret in the
    path or the query, so only the scheme and host are shown."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/…" if parts.hostname else "(a webhook)"


def incident_link(config: ServiceConfig, incident_id: str) -> str:
    base = config.public_url or f"http://{config.host}:{config.port}"
    return f"{base.rstrip('/')}/#/incidents/{incident_id}"


def matching_hooks(hooks: list[HookSpec], incident: dict[str, Any]) -> list[HookSpec]:
    return [h for h in hooks if h.stream == incident["stream"] and h.type == incident["type"]]


def run_command_hook(hook: HookSpec, incident: dict[str, Any]) -> None:
    """Run a remediation command in the background, the incident JSON on its stdin."""
    command = hook.command
    assert command is not None

    def run() -> None:
        try:
            done = subprocess.run(
                command,
                input=json.dumps(incident).encode(),
                capture_output=True,
                timeout=60,
                check=False,
            )
            log.info("hook %s for %s exited %s", command[0], incident["id"], done.returncode)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.error("hook %s for %s failed: %s", command, incident["id"], exc)

    threading.Thread(target=run, name="hook", daemon=True).start()


class OutboxDispatcher:
    """Delivers outbox rows in order of creation; one thread, one HTTP client."""

    def __init__(
        self, store: Store, webhooks: list[WebhookSpec] | None = None, *, poll_s: float = 0.5
    ) -> None:
        self.store = store
        # Signing and routing keys come from the config when a row is sent: they never
        # go to the store. A row from before rows named their webhook goes by its URL.
        self.webhooks = {hook.key: hook for hook in webhooks or []}
        self._by_url = {hook.url: hook for hook in webhooks or []}
        self.poll_s = poll_s
        self.delivered = 0
        self.failures = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="outbox", daemon=True)
        self._client = httpx.Client(timeout=DELIVERY_TIMEOUT_S)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(DELIVERY_TIMEOUT_S + 1)
        self._client.close()

    def wake(self) -> None:
        """New rows were written: deliver now rather than at the next poll."""
        self._wake.set()

    def pending(self) -> int:
        with self.store.session() as s:
            count = s.scalar(
                select(func.count()).select_from(OutboxRow).where(OutboxRow.delivered_at.is_(None))
            )
        return int(count or 0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except Exception:  # the store may be briefly unavailable; try again later
                log.exception("outbox: delivery round failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def deliver_due(self) -> None:
        now = now_utc()
        with self.store.session() as s:
            due = s.scalars(
                select(OutboxRow)
                .where(OutboxRow.delivered_at.is_(None), OutboxRow.next_attempt_at <= now)
                .order_by(OutboxRow.id)
                .limit(50)
            ).all()
        for row in due:
            if self._stop.is_set():
                return
            error = self._post(row)
            with self.store.session() as s:
                stored = s.get(OutboxRow, row.id)
                if stored is None:
                    continue
                stored.attempts += 1
                if error is None:
                    stored.delivered_at = now_utc()
                    stored.last_error = None
                    self.delivered += 1
                else:
                    backoff = min(2.0**stored.attempts, MAX_BACKOFF_S)
                    stored.next_attempt_at = now_utc() + dt.timedelta(seconds=backoff)
                    stored.last_error = error
                    self.failures += 1
                    log.warning(
                        "webhook %s: %s (attempt %d, next in %.0f s)",
                        shown(row.target),
                        error,
                        stored.attempts,
                        backoff,
                    )

    def _post(self, row: OutboxRow) -> str | None:
        hook = self.webhooks.get(row.webhook or "") or self._by_url.get(row.target)
        body = row.body.encode()
        if hook is not None and hook.routing_key is not None:
            routed = with_routing_key(json.loads(row.body), hook.routing_key.get_secret_value())
            body = json.dumps(routed, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"avwatch/{__version__}",
            "X-Avwatch-Delivery": str(row.id),
        }
        if hook is not None and hook.secret is not None:
            headers["X-Avwatch-Signature"] = sign(hook.secret.get_secret_value(), body)
        try:
            response = self._client.post(row.target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{exc.__class__.__name__}: {exc}"
        if response.status_code >= 300:
            return f"HTTP {response.status_code}"
        return None
