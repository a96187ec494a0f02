"""The HTTP API (FastAPI; OpenAPI at /docs).

Reads are open when the config says ``public_reads``; every change needs the
bearer token (``Authorization: Bearer <api_token>``). Without a configured
token, changes are refused: an unprotected monitor must not be reconfigurable
by whoever reaches its port.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import av
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from avwatch import __version__
from avwatch.errors import ConfigError
from avwatch.input.source import redact, redact_options
from avwatch.service.config import StreamSpec
from avwatch.service.core import NotFound, Service, StreamConflict, incident_row
from avwatch.service.evidence import clip_as_mp4
from avwatch.service.signals import plots
from avwatch.service.store import EvidenceRow

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"  # the dashboard: plain HTML, CSS and JS

_bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


# A stream spec or a PATCH is a few kilobytes; nothing the API takes comes near this.
MAX_BODY_BYTES = 1 << 20


def _token_ok(service: Service, presented: str | None) -> bool:
    """Compared as bytes, in constant time: any text a client sends is an answer, not a
    500 (compare_digest refuses non-ASCII str). An empty token is no token."""
    token = service.config.api_token
    expected = b"" if token is None else token.get_secret_value().encode()
    return (
        bool(expected)
        and presented is not None
        and hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected)
    )


def _write_refusal(service: Service, presented: str | None) -> tuple[int, str] | None:
    """Why a change with this bearer token is refused (status, reason); None: it may go."""
    token = service.config.api_token
    if token is None or not token.get_secret_value():
        return 403, "changes are disabled: no api_token is configured"
    if not _token_ok(service, presented):
        return 401, "a valid bearer token is needed for changes"
    return None


class _GuardWrites:
    """A change is refused before its body is read: without the token (401, or 403 when
    changes are disabled), or with a body over MAX_BODY_BYTES (413). FastAPI reads and
    parses a body before it runs the endpoint's dependencies."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        refusal = _write_refusal(self.service, presented if scheme.lower() == "bearer" else None)
        if refusal is None and _declared_length(headers) > MAX_BODY_BYTES:
            refusal = (413, f"the body is over {MAX_BODY_BYTES} bytes")
        if refusal is not None:
            response = JSONResponse({"detail": refusal[1]}, status_code=refusal[0])
            await response(scope, receive, send)
            return
        await self.app(scope, _limited(receive), send)


def _declared_length(headers: Headers) -> int:
    """Content-Length as sent; one that is not a number counts as too long."""
    try:
        return int(headers.get("content-length") or 0)
    except ValueError:
        return MAX_BODY_BYTES + 1


def _limited(receive: Receive) -> Receive:
    """A body sent without a length (chunked) is cut off at MAX_BODY_BYTES."""
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > MAX_BODY_BYTES:
                raise HTTPException(413, f"the body is over {MAX_BODY_BYTES} bytes")
        return message

    return limited


def _can_write(request: Request, credentials: Credentials) -> str:
    refusal = _write_refusal(
        request.app.state.service, credentials.credentials if credentials else None
    )
    if refusal is not None:
        raise HTTPException(*refusal)
    return "api"


def _can_read(request: Request, credentials: Credentials) -> None:
    service: Service = request.app.state.service
    header = credentials.credentials if credentials else None
    # EventSource and <img> cannot send headers: reads also take ?token=.
    query = request.query_params.get("token")
    if not (service.config.public_reads or _token_ok(service, header) or _token_ok(service, query)):
        raise HTTPException(401, "a valid bearer token is needed")


# Module level: FastAPI resolves these annotations by name.
Writer = Annotated[str, Depends(_can_write)]


def create_app(service: Service) -> FastAPI:
    app = FastAPI(
        title="avwatch",
        version=__version__,
        description="Audio/video quality monitor: streams, incidents, evidence.",
    )
    app.state.service = service
    app.add_middleware(_GuardWrites, service=service)
    reader = [Depends(_can_read)]

    @app.exception_handler(ConfigError)
    async def _config_error(_request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(NotFound)
    async def _not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(StreamConflict)
    async def _conflict(_request: Request, exc: StreamConflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    for routes in (_health, _streams, _live, _incidents):
        app.include_router(routes(service, reader))
    # The dashboard: plain files, no build step.
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app


def _health(service: Service, reader: list[Any]) -> APIRouter:
    """Health for load balancers and Prometheus metrics."""
    router = APIRouter()

    @router.get("/healthz")
    def healthz() -> dict[str, Any]:
        workers = service.workers()
        # Alive is not enough: a stopped or stuck worker is alive and blind.
        # No worker at all is blind, unless there is nothing to watch (a Ray cluster
        # whose actors all come on demand).
        staffed = bool(workers) or not service.streams()
        healthy = staffed and all(w["alive"] and w.get("responsive", True) for w in workers)
        store = service.store_health()
        return {
            "status": "ok" if healthy and store["ok"] else "degraded",
            "version": __version__,
            "uptime_s": round(time.time() - service.started_at, 1),
            "workers": workers,
            "nodes": nodes_of(workers),
            "store": store,
        }

    @router.get("/metrics", dependencies=reader)
    def metrics() -> Response:
        service.metrics.workers_seen(service.workers())
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")

    return router


def nodes_of(workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The machines the workers run on (Ray nodes; "local" for worker processes), with
    their workers, streams and restarts; pending workers are on none yet."""
    nodes: dict[str, dict[str, Any]] = {}
    for worker in workers:
        if worker.get("state") == "pending":
            continue
        node = nodes.setdefault(
            worker.get("node") or "local",
            {"workers": 0, "streams": 0, "restarts": 0},
        )
        node["workers"] += 1
        node["streams"] += len(worker["streams"])
        node["restarts"] += worker["restarts"]
    return [{"node": name, **figures} for name, figures in sorted(nodes.items())]


def _streams(service: Service, reader: list[Any]) -> APIRouter:
    """Streams: add, read, change, remove; their picture and effective settings."""
    router = APIRouter()

    def stream_view(spec: StreamSpec) -> dict[str, Any]:
        """A stream as readers see it: credentials in its URL and secret options hidden."""
        return {
            **spec.model_dump(mode="json"),
            "url": redact(spec.url),
            "input_options": redact_options(spec.input_options),
            "status": service.status(spec.id),
            "levels": service.levels(spec.id),
        }

    @router.get("/api/streams", dependencies=reader)
    def list_streams() -> list[dict[str, Any]]:
        return [stream_view(spec) for spec in service.streams()]

    @router.post("/api/streams", status_code=201)
    def add_stream(spec: StreamSpec, _who: Writer) -> dict[str, Any]:
        return stream_view(service.add_stream(spec))

    @router.get("/api/streams/{stream_id}", dependencies=reader)
    def get_stream(stream_id: str) -> dict[str, Any]:
        return stream_view(service.stream(stream_id))

    @router.patch("/api/streams/{stream_id}")
    def patch_stream(stream_id: str, changes: dict[str, Any], _who: Writer) -> dict[str, Any]:
        return stream_view(service.update_stream(stream_id, changes))

    @router.delete("/api/streams/{stream_id}", status_code=204)
    def delete_stream(stream_id: str, _who: Writer) -> Response:
        service.delete_stream(stream_id)
        return Response(status_code=204)

    @router.get("/api/streams/{stream_id}/thumbnail", dependencies=reader)
    def thumbnail(stream_id: str) -> Response:
        """The latest picture: colour JPEG, or grey PNG when no colour one was made."""
        service.stream(stream_id)
        picture = service.thumbnail(stream_id)
        if picture is None:
            raise HTTPException(404, "no picture yet")
        kind = "image/png" if picture.startswith(b"\x89PNG") else "image/jpeg"
        return Response(picture, media_type=kind, headers={"Cache-Control": "no-store"})

    @router.get("/api/streams/{stream_id}/settings", dependencies=reader)
    def settings(stream_id: str) -> dict[str, dict[str, Any]]:
        """Every detector's effective options for this stream (defaults filled in)."""
        return service.settings(stream_id)

    return router


def _live(service: Service, reader: list[Any]) -> APIRouter:
    """What a stream page draws: the plots, recent signals, and server-sent events."""
    router = APIRouter()

    @router.get("/api/plots", dependencies=reader)
    def list_plots() -> list[dict[str, Any]]:
        """The plots of a stream page: title, the signals drawn, scale, target line."""
        return plots()

    @router.get("/api/streams/{stream_id}/signals", dependencies=reader)
    def signals(stream_id: str, since: float = 0.0) -> dict[str, list[list[float]]]:
        """Recent detector signals: per name, [unix time, min, max] every 0.5 s."""
        service.stream(stream_id)
        return service.signals.get(stream_id, since)

    @router.get("/api/events", dependencies=reader)
    async def events(request: Request) -> StreamingResponse:
        """Server-sent events: ``status`` (every 2 s per stream), ``levels`` (audio
        meters, four times a second per stream), ``incident``, ``streams``."""
        queue = service.events.subscribe()

        async def stream() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"
                while not await request.is_disconnected():
                    try:
                        event = await asyncio.wait_for(queue.get(), timeout=15)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    yield f"event: {event['kind']}\ndata: {json.dumps(event)}\n\n"
            finally:
                service.events.unsubscribe(queue)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    return router


def _incidents(service: Service, reader: list[Any]) -> APIRouter:
    """Incidents: query, one with its evidence, acknowledge."""
    router = APIRouter()

    @router.get("/api/incidents", dependencies=reader)
    def list_incidents(
        stream: str | None = None,
        type: str | None = None,
        open: bool | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    ) -> dict[str, Any]:
        assert service.store is not None
        total, rows = service.store.incidents(
            stream=stream,
            type_=type,
            open_=open,
            since=_aware(since),
            until=_aware(until),
            limit=limit,
            offset=offset,
        )
        return {
            "total": total,
            "limit": limit,
            "offset": offset,
            "items": [row.to_api() for row in rows],
        }

    @router.get("/api/incidents/{incident_id}", dependencies=reader)
    def get_incident(incident_id: str) -> dict[str, Any]:
        assert service.store is not None
        with service.store.session() as s:
            row = incident_row(s, incident_id)
            names = s.scalars(
                select(EvidenceRow.name).where(EvidenceRow.incident == incident_id)
            ).all()
            body = row.to_api()
        body["evidence"] = [
            {"name": name, "url": f"/api/incidents/{incident_id}/evidence/{name}"} for name in names
        ]
        return body

    @router.get("/api/incidents/{incident_id}/evidence/{name}", dependencies=reader)
    def evidence(incident_id: str, name: str) -> Response:
        """Stored evidence by name; ``clip.mp4`` is ``clip.ts`` remuxed for browsers."""
        assert service.store is not None
        stored = "clip.ts" if name == "clip.mp4" else name
        with service.store.session() as s:
            row = s.scalars(
                select(EvidenceRow).where(
                    EvidenceRow.incident == incident_id, EvidenceRow.name == stored
                )
            ).first()
            if row is None:
                raise HTTPException(404, f"no evidence {name!r} for incident {incident_id!r}")
            data, media_type = row.data, row.media_type
        if name == "clip.mp4":
            try:
                data, media_type = clip_as_mp4(data), "video/mp4"
            except (av.error.FFmpegError, ValueError) as exc:
                raise HTTPException(422, f"the clip cannot be remuxed to MP4: {exc}") from exc
        return Response(data, media_type=media_type)

    @router.post("/api/incidents/{incident_id}/ack")
    def acknowledge(incident_id: str, who: Writer) -> dict[str, Any]:
        return service.acknowledge(incident_id, who).to_api()

    return router


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value
