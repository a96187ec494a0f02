"""Live updates for the dashboard: a hub that fans events out to server-sent-event
clients.

Events are published from the service's message thread and consumed on the
API's event loop, so each subscriber is an ``asyncio.Queue`` fed with
``call_soon_threadsafe``. A slow client loses its oldest events rather than
holding anything up.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

__all__ = ["EventHub"]

CLIENT_QUEUE = 1000


class EventHub:
    def __init__(self) -> None:
        self._clients: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = []
        self._lock = threading.Lock()

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(CLIENT_QUEUE)
        with self._lock:
            self._clients.append((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        with self._lock:
            self._clients = [(loop, q) for loop, q in self._clients if q is not queue]

    def publish(self, event: dict[str, Any]) -> None:
        with self._lock:
            clients = list(self._clients)
        for loop, queue in clients:
            try:
                loop.call_soon_threadsafe(_put_dropping_oldest, queue, event)
            except RuntimeError:  # that client's loop is gone
                self.unsubscribe(queue)


def _put_dropping_oldest(queue: asyncio.Queue[dict[str, Any]], event: dict[str, Any]) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(event)
