"""Run the service behind uvicorn: in the foreground (``avwatch serve``) or on a
background thread (``avwatch demo`` and the tests, which talk to it over loopback)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

import uvicorn

from avwatch.service.api import create_app
from avwatch.service.core import Service

__all__ = ["BackgroundServer", "serve_forever"]

log = logging.getLogger(__name__)


def _uvicorn(service: Service, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(service), host=host, port=port, log_level="warning", access_log=False
    )
    return uvicorn.Server(config)


class _Terminated(Exception):
    """SIGTERM, turned into an exception so that the service stops before we exit."""


def _terminated(_signum: int, _frame: FrameType | None) -> None:
    raise _Terminated


def serve_forever(service: Service, host: str, port: int) -> None:
    """Start the service, serve the API until SIGINT/SIGTERM, then stop cleanly: workers
    stopped, open incidents closed with the reason, the store closed.

    uvicorn shuts down on either signal, then raises it again once its own handlers
    are gone; SIGTERM's default action would end the process there, before the service
    stops (systemd, Docker and Kubernetes all send SIGTERM). Our handler, restored by
    uvicorn, turns it into an exception instead."""
    previous = signal.signal(signal.SIGTERM, _terminated)
    service.start()
    try:
        log.warning("avwatch serving on http://%s:%d (API docs at /docs)", host, port)
        _uvicorn(service, host, port).run()
    except _Terminated:
        log.warning("avwatch: SIGTERM, stopping")
    finally:
        service.stop()
        signal.signal(signal.SIGTERM, previous)


class BackgroundServer:
    """The service and its API on a thread; ``port=0`` takes a free port."""

    def __init__(self, service: Service, host: str = "127.0.0.1", port: int = 0) -> None:
        self.service = service
        self.server = _uvicorn(service, host, port)
        self.host = host
        self._thread = threading.Thread(target=self.server.run, name="api", daemon=True)

    @property
    def url(self) -> str:
        sockets = [s for server in self.server.servers for s in server.sockets]
        port = sockets[0].getsockname()[1] if sockets else self.server.config.port
        return f"http://{self.host}:{port}"

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self.service.start()
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.service.stop()
                raise RuntimeError("the API server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10)
        self.service.stop()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
