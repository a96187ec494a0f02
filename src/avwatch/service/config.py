"""The service's configuration: server, store, alerts, and the streams to watch.

One YAML file::

    database: sqlite:///avwatch.db        # or postgresql+psycopg://user@host/db
    api_token: change-me                  # bearer token for every change; never logged
    public_reads: true                    # GET without the token
    engine:                               # defaults for every stream (see `avwatch detectors`)
      detectors: {black: {min_duration_s: 0.5}}
    streams:
      - id: news
        url: udp://239.1.1.1:5000
        detectors: {loudness: {preset: atsc_a85}}   # merged onto engine.detectors
    webhooks:
      - url: https://alerts.example.com/avwatch
        secret: s3cret                    # HMAC-SHA256 of the body, X-Avwatch-Signature
      - {format: pagerduty, routing_key: 0123…}   # also slack, teams
    hooks:
      - stream: news
        type: black
        command: ["switch-to-backup", "news"]

``stream_engine_config`` is the one place where the global engine settings meet
a stream's overrides.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from sqlalchemy.engine import make_url

from avwatch.config import EngineConfig, Expect, merge_overrides, validated
from avwatch.service.alert_formats import PAGERDUTY_EVENTS_URL, WebhookFormat
from avwatch.types import Analysis, Profile, Severity

__all__ = [
    "ClusterSpec",
    "HookSpec",
    "Placement",
    "ServiceConfig",
    "StreamSpec",
    "WebhookSpec",
    "spool_path",
    "stream_engine_config",
]

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class Placement(BaseModel):
    """Which Ray nodes may run a stream (``cluster: {backend: ray}``)."""

    model_config = ConfigDict(extra="forbid")

    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Ray custom resources its worker needs, e.g. {site_a: 1} for a "
        "multicast feed only that site's nodes (ray start --resources) can receive.",
    )


class StreamSpec(BaseModel):
    """One monitored stream."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Short identifier: lower-case letters, digits, - and _.")
    name: str = Field("", description="Display name (default: the id).")
    url: str = Field(
        description="Path or URL: udp://, rtp://, srt://, rtmp://, rtsp://, http(s)://."
    )
    enabled: bool = True
    input_options: dict[str, str] = Field(
        default_factory=dict,
        description="libavformat options of the input, e.g. for multicast UDP/RTP "
        "{localaddr: 10.0.0.5} (the interface) and {sources: 10.1.1.1} (source-specific).",
    )
    loop: bool = Field(
        False, description="Play a file over and over at real-time pace (demos, tests)."
    )
    detectors: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Detector options merged onto the engine defaults."
    )
    analysis: Analysis | None = Field(
        None,
        description="This stream's analysis tier (full, fast, patrol), over the engine's.",
    )
    profile: Profile | None = Field(
        None, description="This stream's operating point (live, qc), over the engine's."
    )
    expect: Expect = Field(
        default_factory=Expect,
        description="What this stream must carry, merged onto the engine's expect: "
        "e.g. {captions: true}.",
    )
    input_loss_after_s: float = Field(
        3.0, gt=0, le=300, description="No data for this long opens an input_loss incident."
    )
    evidence_clip_s: float = Field(
        8.0,
        ge=0,
        le=60,
        description="Seconds of input kept in memory and saved as a playable clip when an "
        "incident opens (0: no clips).",
    )
    batch_s: float = Field(
        0.2,
        ge=0,
        le=2.0,
        description="Once caught up with a live input, wait this long and decode what came "
        "meanwhile in one batch: the decoder then keeps its CPU caches warm (one 576i "
        "stream: about a fifth less CPU than picture by picture). Up to this much more latency; "
        "0: decode each packet as it comes. Applies to UDP, RTP, SRT, RIST and looping files.",
    )
    max_lag_s: float = Field(
        5.0,
        gt=0,
        le=600,
        description="Analysis this far behind real time opens monitor_overload: a monitor "
        "that cannot keep up must not look healthy.",
    )
    split: list[list[str]] | None = Field(
        None,
        max_length=16,
        description="Run the detectors in parts, each on a worker of its own that decodes "
        "the stream itself, e.g. [[black, freeze, silence], [av_sync]]: incidents join "
        "under this stream. The first part also watches the input and the transport "
        "stream; detectors named in no group run there.",
    )
    placement: Placement = Field(
        default_factory=lambda: Placement(),
        description="Where the stream may run, on a Ray cluster.",
    )

    @model_validator(mode="after")
    def _check_id(self) -> StreamSpec:
        if not _ID.match(self.id):
            raise ValueError(f"stream id {self.id!r}: use a-z, 0-9, - and _ (at most 63)")
        if self.split is not None:
            named = [key for group in self.split for key in group]
            if len(named) != len(set(named)):
                raise ValueError("split: a detector may be named in one group only")
            if any(not group for group in self.split[1:]):
                raise ValueError("split: only the first group may be empty")
        if not self.name:
            object.__setattr__(self, "name", self.id)
        return self


class WebhookSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        None, description="Tells apart webhooks of one format to one URL (PagerDuty services)."
    )
    url: str = Field(
        "",
        description="Receiver of incident open/close notifications (JSON POST); "
        "PagerDuty's Events API v2 by default for format pagerduty.",
    )
    format: WebhookFormat = Field(
        "generic",
        description="generic (avwatch's JSON), slack or teams (incoming-webhook messages), "
        "pagerduty (Events API v2: trigger on open, resolve on close, one dedup key).",
    )
    routing_key: SecretStr | None = Field(
        None, description="PagerDuty integration key (format pagerduty); never stored."
    )
    secret: SecretStr | None = Field(None, description="Signs each body with HMAC-SHA256.")
    min_severity: Severity = Severity.WARNING
    types: list[str] | None = Field(None, description="Only these incident types (default all).")

    @model_validator(mode="after")
    def _target(self) -> WebhookSpec:
        if self.format == "pagerduty":
            if self.routing_key is None or not self.routing_key.get_secret_value():
                raise ValueError("a pagerduty webhook needs its routing_key")
            self.url = self.url or PAGERDUTY_EVENTS_URL
        elif self.routing_key is not None:
            raise ValueError("routing_key is only for format pagerduty")
        if not self.url:
            raise ValueError("a webhook needs its url")
        return self

    @property
    def key(self) -> str:
        """Which webhook an outbox row is for, without its credentials: the row finds
        its secret or routing key in the config when it is sent."""
        return self.name or f"{self.format} {self.url}"


class HookSpec(BaseModel):
    """A remediation action run when an incident of ``type`` opens on ``stream``."""

    model_config = ConfigDict(extra="forbid")

    stream: str
    type: str
    url: str | None = Field(None, description="POSTed the incident JSON.")
    command: list[str] | None = Field(None, description="Run with the incident JSON on stdin.")

    @model_validator(mode="after")
    def _one_action(self) -> HookSpec:
        if (self.url is None) == (self.command is None):
            raise ValueError("a hook needs exactly one of url or command")
        return self


class ClusterSpec(BaseModel):
    """Where the workers run: local processes, or Ray actors across machines."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["local", "ray"] = Field(
        "local", description="local worker processes, or Ray actors (pip install avwatch[ray])."
    )
    address: str = Field(
        "auto", description="The Ray cluster: auto (the one on this machine) or ray://HOST:PORT."
    )
    namespace: str = Field("avwatch", description="Ray namespace of the named worker actors.")
    streams_per_worker: int | None = Field(
        2,
        ge=1,
        le=1000,
        description="Monitors one actor (one CPU) takes at most; more streams start more "
        "actors, up to max_workers, which wait for a free CPU (pending) and are Ray's "
        "autoscaler's demand. `avwatch bench streams` measures it for your content: 5 "
        "1080p30 streams with every detector kept up live on 2 cores of the reference "
        "machine; SD, 720p and patrolled streams cost far less. None: no limit, the "
        "workers' count fixed.",
    )
    max_workers: int = Field(
        256, ge=1, le=10_000, description="Actors at most, with streams_per_worker."
    )
    hung_after_s: float = Field(
        5.0,
        gt=1,
        le=300,
        description="An actor silent this long (it heartbeats every second) is replaced: "
        "a frozen node's streams come back elsewhere before Ray's health checks give up "
        "on the node.",
    )
    idle_after_s: float = Field(
        30.0,
        ge=0,
        le=86_400,
        description="An actor beyond `workers` left with no stream this long is given "
        "back, and Ray's autoscaler can then remove its node.",
    )


class ServiceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8470, ge=0, le=65535)
    database: str = Field("sqlite:///avwatch.db", description="SQLAlchemy URL of the store.")
    api_token: SecretStr | None = Field(
        None, description="Bearer token for changes. Without one, changes are refused."
    )
    public_reads: bool = Field(True, description="Allow GET requests without the token.")
    workers: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Worker processes, or Ray actors (default: one per core of the machine, "
        "or of the Ray cluster: none on one that has no CPU until its autoscaler adds nodes, "
        "and then each stream's actor is its demand).",
    )
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    pin_workers: bool = Field(
        True,
        description="Pin each worker process to one CPU, round robin, when every CPU gets "
        "a worker: its streams' decoders then find their data in that core's cache. "
        "Linux only.",
    )
    queue_frames: int = Field(
        50,
        ge=1,
        le=10_000,
        description="Samples buffered between a stream's input and its analysis; "
        "when full, samples are dropped and counted, the input never waits. A stream's "
        "queue holds at least two of its input batches (batch_s) at 60 fps.",
    )
    flap_window_s: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="An incident type that reopens within this window on a stream is "
        "alerted once: flapping suppression.",
    )
    evidence_keep_s: float = Field(
        30 * 86400.0,
        ge=60.0,
        le=10 * 365 * 86400.0,
        description="Evidence (pictures, clips) older than this is deleted.",
    )
    evidence_max_bytes: int = Field(
        2 << 30,
        ge=1 << 20,
        description="Evidence kept in all, the newest first: a flapping stream must not "
        "fill the disk.",
    )
    spool_file: str | None = Field(
        None,
        description="Where incident changes and evidence the store cannot take are also "
        "written, so that a service stopped while its database is down loses none: "
        "default beside an SQLite file (FILE.spool), else avwatch.spool in the working "
        'directory; "" for none.',
    )
    public_url: str | None = Field(
        None,
        description="The dashboard's address as operators reach it, for the links in "
        "alerts (default http://HOST:PORT).",
    )
    engine: EngineConfig = Field(default_factory=EngineConfig)
    streams: list[StreamSpec] = Field(default_factory=list)
    webhooks: list[WebhookSpec] = Field(default_factory=list)
    hooks: list[HookSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> ServiceConfig:
        if "decoder_threads" not in self.engine.model_fields_set:
            # Many streams share the cores: one decoder thread each, unless told.
            self.engine.decoder_threads = 1
        seen: set[str] = set()
        for stream in self.streams:
            if stream.id in seen:
                raise ValueError(f"stream id {stream.id!r} is used twice")
            seen.add(stream.id)
        keys: set[str] = set()
        for hook in self.webhooks:
            if hook.key in keys:
                raise ValueError(f"two webhooks are {hook.key!r}: give each a name")
            keys.add(hook.key)
        return self


def spool_path(config: ServiceConfig, database: str) -> Path | None:
    """Where this service's spool file is (None: it keeps none)."""
    if config.spool_file is not None:
        return Path(config.spool_file) if config.spool_file else None
    url = make_url(database)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(f"{url.database}.spool")
    return Path("avwatch.spool")


def stream_engine_config(engine: EngineConfig, stream: StreamSpec) -> EngineConfig:
    """The engine settings one stream runs with: the defaults, then its own overrides."""
    merged = engine.model_dump()
    merged["detectors"] = merge_overrides(engine.detectors, stream.detectors)
    if stream.analysis is not None:
        merged["analysis"] = stream.analysis
    if stream.profile is not None:
        merged["profile"] = stream.profile
    merged["expect"] = {
        **engine.expect.model_dump(exclude_none=True),
        **stream.expect.model_dump(exclude_none=True),
    }
    return validated(EngineConfig, merged, f"stream {stream.id!r}")
