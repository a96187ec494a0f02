"""The pool's inbox: the service gets every message in order, whatever its pace."""

from __future__ import annotations

import threading

from servicekit import ok_status

from avwatch.service import inbox as inbox_module
from avwatch.service.inbox import Inbox
from avwatch.service.messages import Evidence, WorkerMessage


def evidence(name: str) -> Evidence:
    return Evidence("news", "incident-1", name, "image/png", b"")


def test_messages_and_a_restart_reach_the_service_in_the_order_they_came():
    seen: list[object] = []
    inbox = Inbox(seen.append)
    inbox.start()
    inbox.put(0, evidence("before"))
    inbox.after(lambda: seen.append("worker 0 restarted"))
    inbox.put(0, evidence("after"))
    inbox.stop()
    assert seen == [evidence("before"), "worker 0 restarted", evidence("after")]
    assert inbox.undelivered(0) == 0


def test_a_slow_service_is_counted_behind_and_loses_only_superseded_reports(monkeypatch):
    monkeypatch.setattr(inbox_module, "MAX_UNDELIVERED", 3)
    release = threading.Event()
    seen: list[WorkerMessage] = []

    def slow_service(message: WorkerMessage) -> None:
        release.wait(10)  # the store is busy
        seen.append(message)

    inbox = Inbox(slow_service)
    inbox.start()
    kept = [evidence(str(n)) for n in range(5)]
    for message in kept[:3]:
        inbox.put(1, message)
    inbox.put(1, ok_status())  # three behind: a status report is dropped
    for message in kept[3:]:
        inbox.put(1, message)  # evidence never is
    assert inbox.undelivered(1) == 5 and inbox.dropped(1) == 1
    assert inbox.undelivered(0) == 0
    release.set()
    inbox.stop()
    assert seen == kept
    assert inbox.undelivered(1) == 0


def test_one_message_the_service_cannot_take_does_not_stop_the_rest(caplog):
    seen: list[WorkerMessage] = []

    def fussy_service(message: WorkerMessage) -> None:
        if message == evidence("bad"):
            raise ValueError("cannot take it")
        seen.append(message)

    inbox = Inbox(fussy_service)
    inbox.start()
    for name in ("one", "bad", "two"):
        inbox.put(0, evidence(name))
    inbox.stop()
    assert seen == [evidence("one"), evidence("two")]
    assert "handling a Evidence message failed" in caplog.text
