"""Worker messages on their way to the service.

A pool takes its workers' messages in on one thread (each one is proof that its worker
lives) and the service handles them on another, in the order they came. A service slow
to store them (a busy disk, evidence retention at work) then falls behind on its own
work; it no longer keeps the pool from reading the heartbeats that the watchdog judges
workers by. What the pool tells of a worker (its restart) waits in the same line, after
the messages the worker sent before it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from typing import TypeAlias

from avwatch.service.messages import LevelsReport, StatusReport, WorkerMessage

__all__ = ["MAX_UNDELIVERED", "Inbox"]

log = logging.getLogger(__name__)

# Messages taken in and not yet handled. Past this many, status and meter reports (each
# superseded by the next within seconds) are dropped on arrival; incidents and evidence
# are always kept.
MAX_UNDELIVERED = 20_000

_END = object()  # put by stop(): everything before it is delivered

# A worker's message, an action to run in turn, or _END.
_Item: TypeAlias = tuple[int, WorkerMessage] | Callable[[], None] | object


class Inbox:
    def __init__(self, on_message: Callable[[WorkerMessage], None]) -> None:
        self.on_message = on_message
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._lock = threading.Lock()
        self._undelivered: Counter[int] = Counter()  # per sending worker
        self._dropped: Counter[int] = Counter()
        self._thread = threading.Thread(target=self._deliver_all, name="pool-delivery")
        self._thread.daemon = True

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Deliver what was taken in (waiting up to ``timeout`` for the service)."""
        if self._thread.ident is None:  # never started: nothing was taken in
            return
        self._queue.put(_END)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the service did not take %d worker messages in time", self.waiting())

    def put(self, worker: int, message: WorkerMessage) -> None:
        with self._lock:
            behind = sum(self._undelivered.values()) >= MAX_UNDELIVERED
            if behind and isinstance(message, StatusReport | LevelsReport):
                self._dropped[worker] += 1
                return
            self._undelivered[worker] += 1
        self._queue.put((worker, message))

    def after(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the delivery thread once what came before it is delivered."""
        self._queue.put(action)

    def undelivered(self, worker: int) -> int:
        """``worker``'s messages not handled yet: the service is that far behind."""
        with self._lock:
            return self._undelivered[worker]

    def dropped(self, worker: int) -> int:
        """``worker``'s reports dropped because the service was too far behind."""
        with self._lock:
            return self._dropped[worker]

    def waiting(self) -> int:
        with self._lock:
            return sum(self._undelivered.values())

    def _deliver_all(self) -> None:
        while (item := self._queue.get()) is not _END:
            if isinstance(item, tuple):
                self._deliver(*item)
            elif callable(item):
                try:
                    item()
                except Exception:
                    log.exception("a worker's restart could not be handled")

    def _deliver(self, worker: int, message: WorkerMessage) -> None:
        try:
            self.on_message(message)
        except Exception:  # one bad message must not stop the others
            log.exception("handling a %s message failed", type(message).__name__)
        finally:
            with self._lock:
                self._undelivered[worker] -= 1
