"""One live stream, watched for ever: input → decode → detectors → incidents.

Two threads per stream, with a bounded queue between them (Frigate's
``capture_frames`` shape): the input thread reads and decodes and never waits
for analysis — when the queue is full the sample is dropped and counted, and
the analysis side is told of the break so it does not mistake it for a defect
of the stream. The analysis thread runs the same ``StreamAnalyzer`` as
``avwatch check``.

Around it, what a 24/7 monitor needs: open and read timeouts, reconnect with
backoff, ``input_loss`` when no data came for ``input_loss_after_s``, and
self-monitoring — input bitrate, decode fps, lag behind real time, samples
dropped by avwatch — with ``monitor_overload`` when it cannot keep up, so that
a blind monitor never looks healthy.

Where avwatch reads the transport stream itself (UDP, TS files), the TR 101
290 analyser sees the same bytes; its findings join the detectors' incidents.

Everything leaves through ``emit(message)`` as the typed messages of
``service/messages.py`` (they cross a process boundary): ``IncidentUpdate``
(opened, changed or closed), ``Evidence`` (PNG pictures before and during a
defect, a TS clip) and ``StatusReport``.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import av

from avwatch.analysis.analyzer import ANALYSIS_BATCH, StreamAnalyzer
from avwatch.analysis.check import make_reader
from avwatch.analysis.escalation import Escalation, FullSlots
from avwatch.analysis.incidents import IncidentTracker
from avwatch.config import EngineConfig
from avwatch.detectors.loudness.detector import LoudnessDetector
from avwatch.errors import AvwatchError
from avwatch.input.source import close_input, flush_tap, open_input, redact
from avwatch.service.config import StreamSpec
from avwatch.service.evidence import PacketRing, RecentPictures, encode_png, write_clip
from avwatch.service.messages import (
    Evidence,
    IncidentUpdate,
    LevelsReport,
    StatusReport,
    StreamStatus,
    WorkerMessage,
)
from avwatch.service.parts import detector_parts
from avwatch.service.signals import SignalBuckets
from avwatch.transport.analyser import TsAnalyzer, TsEvent
from avwatch.types import (
    DecodeIssue,
    Incident,
    LumaPlane,
    MediaTime,
    Sample,
    Severity,
    StreamInfo,
    VideoFrame,
)

__all__ = ["Emit", "StreamMonitor"]

log = logging.getLogger(__name__)

Emit = Callable[[WorkerMessage], None]

STATUS_EVERY_S = 2.0
LEVELS_EVERY_S = 0.25  # audio meters on the tiles: several readings a second
MAX_BACKOFF_S = 10.0
# How long overload stays open after the last dropped sample.
OVERLOAD_HOLD_S = 10.0
# The analysis waits up to this share of ``batch_s`` for the rest of an input batch.
GATHER_SHARE = 0.25
# Samples a second at most in a usual stream (60 pictures, ten audio blocks): a
# stream's queue holds two input batches of them, so that batching alone drops nothing.
SAMPLES_PER_S = 70


@dataclass(frozen=True, slots=True)
class _Queued:
    """A sample on its way from the input thread to the analysis thread."""

    sample: Sample
    wall: float


@dataclass(frozen=True, slots=True)
class _SessionStart:
    """A connection opened: media time starts again."""

    info: StreamInfo
    wall: float


@dataclass(frozen=True, slots=True)
class _SessionEnd:
    pass


@dataclass(frozen=True, slots=True)
class _TsFindings:
    events: list[TsEvent]
    t0: MediaTime


_Item: TypeAlias = _Queued | _SessionStart | _SessionEnd | _TsFindings


class _Session:
    """A connection's worth of analysis: media time restarts with each one."""

    def __init__(self, info: StreamInfo, analyzer: StreamAnalyzer, wall: float) -> None:
        self.info = info
        self.analyzer = analyzer
        self.anchor_wall = wall
        self.anchor_media: MediaTime | None = None
        self.signals = SignalBuckets(self.wall_of)

    def wall_of(self, t: MediaTime) -> float:
        return self.anchor_wall + (t - (self.anchor_media or 0.0))


class StreamMonitor:
    def __init__(
        self,
        spec: StreamSpec,
        engine: EngineConfig,
        emit: Emit,
        *,
        queue_frames: int = 50,
        slots: FullSlots | None = None,
        part: int = 0,
    ) -> None:
        """``part``: which part of a split stream this monitor is (service/parts.py)."""
        self.spec = spec
        self.part = part
        self.detector_keys = detector_parts(spec)[part]
        self.engine = engine
        self.emit = emit
        self.queue_frames = queue_frames
        self.slots = slots
        # A patrolled stream's switch to full analysis, on the wall clock: the input
        # thread asks it at each keyframe, the analysis thread tells it of trouble.
        self.escalation = (
            Escalation(engine.escalation, time.time, slots=slots, name=spec.id)
            if engine.analysis == "patrol"
            else None
        )
        capacity = max(queue_frames, math.ceil(2 * spec.batch_s * SAMPLES_PER_S))
        self._queue: queue.Queue[_Item] = queue.Queue(capacity)
        self._gather_s = spec.batch_s * GATHER_SHARE
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # Counters, written by the input thread, read for status.
        self.dropped_samples = 0
        self.reconnects = 0
        self.bytes_read = 0
        self.last_data_wall: float | None = None
        self.state = "connecting"
        self.last_error = ""
        self._drop_pending = False
        self._last_drop_wall = 0.0
        # Monitor-level incidents (not from a detector).
        self._input_loss: Incident | None = None
        self._overload: Incident | None = None
        self._started_at: dict[str, float] = {}  # monitor incidents: wall-clock start
        # Incidents whose evidence clip the input thread (owner of the packets) writes.
        self._clip_requests: deque[str] = deque()
        # Analysis state, owned by the analysis thread.
        self._session: _Session | None = None
        self._pictures = RecentPictures()  # for "before the defect" evidence
        self._current_luma: LumaPlane | None = None
        self._thumbnail: bytes | None = None  # the latest colour picture (JPEG)
        self._ts: TsAnalyzer | None = None  # the current connection's, read for status
        self.lag_s = 0.0
        # Why one of its threads died, and when (wall clock): the worker restarts it.
        self.failure: str | None = None
        self.failed_at = 0.0
        self._failure_incident: Incident | None = None

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        for target, role in ((self._input_loop, "input"), (self._analysis_loop, "analysis")):
            thread = threading.Thread(
                target=self._guarded,
                args=(target, role),
                name=f"{role}-{self.spec.id}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        if self.escalation is not None:
            self.escalation.release()

    def restarted(self) -> StreamMonitor:
        """A new monitor of the same stream, after one of this one's threads died: the
        failure is a ``monitor_failure`` incident, opened when it happened and closed
        now; the incidents this monitor left open are closed, as by a stop."""
        self.stop(timeout=2.0)  # the worker's heartbeats wait meanwhile
        session = self._session
        if session is not None:  # its analysis thread may be the one that died
            session.analyzer.tracker.close_all(session.analyzer.stats.end)
        now = time.time()
        self._close_monitor_incidents(now)
        failure = self._failure_incident
        if failure is None:  # failed while the incident was being opened
            failure = self._monitor_incident("monitor_failure", self.failed_at, reason=self.failure)
        failure.details["restarted"] = True
        self._end_monitor_incident(failure, now)
        fresh = StreamMonitor(
            self.spec,
            self.engine,
            self.emit,
            queue_frames=self.queue_frames,
            slots=self.slots,
            part=self.part,
        )
        fresh.reconnects = self.reconnects + 1
        fresh.start()
        return fresh

    def _guarded(self, target: Callable[[], None], role: str) -> None:
        """A thread that dies says so (``failure``) instead of leaving the stream blind."""
        try:
            target()
        except Exception as exc:
            log.exception("stream %s: the %s thread died", self.spec.id, role)
            reason = f"the {role} thread died: {type(exc).__name__}: {exc}"
            self.failed_at = time.time()
            self.state, self.last_error = "failed", reason
            try:  # said at once, before the worker replaces this monitor: blind, not fine
                self._failure_incident = self._monitor_incident(
                    "monitor_failure", self.failed_at, reason=reason
                )
                self._status(0.0)
            except Exception:
                log.exception("stream %s: reporting its failure failed", self.spec.id)
            finally:
                self.failure = reason  # the worker replaces the monitor once this is set

    # -- input thread ------------------------------------------------------------------
    def _input_loop(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            ts = TsAnalyzer()  # TR 101 290 on the bytes, where the input is a TS avwatch reads
            try:
                container = open_input(
                    self.spec.url,
                    open_timeout_s=self.engine.open_timeout_s,
                    read_timeout_s=self.spec.input_loss_after_s,
                    options=self.spec.input_options,
                    ts_analyzer=ts,
                    batch_s=self.spec.batch_s,
                )
            except AvwatchError as exc:
                self._input_down(str(exc))
                self._stop.wait(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
                continue
            reason = "the stream ended"
            data_before = self.last_data_wall
            try:
                reason = self._read(container, ts) or reason
                if self.last_data_wall != data_before:
                    delay = 1.0  # this connection delivered: back off from scratch
            except Exception as exc:  # a monitor must outlive any one bad session
                log.exception("stream %s: input failed", self.spec.id)
                reason = f"input failed: {exc}"
            finally:
                close_input(container)
                self._control(_SessionEnd())
            if self._stop.is_set():
                break
            self.reconnects += 1
            if self.spec.loop and reason == "the stream ended":
                continue  # a looping file starts over at once
            self._input_down(reason)
            self._stop.wait(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)

    def _read(self, container: Any, ts: TsAnalyzer) -> str | None:
        ring = PacketRing(self.spec.evidence_clip_s) if self.spec.evidence_clip_s else None
        reader = make_reader(
            container, self.spec.url, self.engine, on_packet=None if ring is None else ring.add
        )
        reader.thumbnail_every_s = STATUS_EVERY_S  # a colour picture for every status
        if self.escalation is not None:
            reader.full_wanted = self.escalation.full_wanted
        streams = [*container.streams.video[:1], *container.streams.audio[:1]]
        self._ts = ts
        started = time.time()
        self._control(_SessionStart(reader.info, time.time()))
        first: MediaTime | None = None
        try:
            for sample in reader.samples():
                if self._stop.is_set():
                    return None
                if isinstance(sample, DecodeIssue) and sample.kind == "demux_error":
                    return f"input stopped: {sample.message}"
                now = time.time()
                self.bytes_read = reader.bytes_read
                self.last_data_wall = now
                self.state = "ok"
                if self.spec.loop and not isinstance(sample, DecodeIssue):
                    # A file played as if live: wait for the sample's moment, and, as
                    # a live input does (input/batching.py), for a batch after it.
                    first = sample.time if first is None else first
                    ahead = started + (sample.time - first) - now
                    if ahead > 0 and self._stop.wait(ahead + self.spec.batch_s):
                        return None
                self._offer(sample, now)
                self._forward_ts(ts, reader.t0)
                while self._clip_requests and ring is not None:
                    self._clip(streams, ring, self._clip_requests.popleft())
        finally:
            flush_tap(container)  # the session ended: the last bytes, and what the
            ts.finish()  # analyser held for the next PCR, still reach the incidents
            self._forward_ts(ts, reader.t0)
        return None

    def _forward_ts(self, ts: TsAnalyzer, t0: MediaTime | None) -> None:
        """Transport findings must reach the incidents: these are never dropped."""
        if ts.events and t0 is not None:
            events, ts.events[:] = list(ts.events), []
            self._control(_TsFindings(events, t0))

    def _clip(self, streams: list[Any], ring: PacketRing, incident_id: str) -> None:
        """The last seconds of input before an incident opened, as a playable TS."""
        try:
            data = write_clip(streams, ring.snapshot())
        except (av.error.FFmpegError, ValueError) as exc:
            log.warning("stream %s: evidence clip failed: %s", self.spec.id, exc)
            return
        if data:
            self.emit(Evidence(self.spec.id, incident_id, "clip.ts", "video/mp2t", data))

    def _offer(self, sample: Sample, wall: float) -> None:
        """Queue a sample for analysis; never wait: when full, drop it and count."""
        try:
            if self._drop_pending:
                issue = DecodeIssue(sample.time, "discontinuity", None, "avwatch dropped samples")
                self._queue.put_nowait(_Queued(issue, wall))
                self._drop_pending = False
            self._queue.put_nowait(_Queued(sample, wall))
        except queue.Full:
            self.dropped_samples += 1
            self._drop_pending = True
            self._last_drop_wall = wall

    def _control(self, item: _SessionStart | _SessionEnd | _TsFindings) -> None:
        """Session boundaries must reach the analysis thread: these wait for room."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _input_down(self, reason: str) -> None:
        # The reason reaches the status, the logs and input_loss's details (webhooks):
        # never with the URL's credentials, whichever error wrote it.
        reason = reason.replace(self.spec.url, redact(self.spec.url))
        self.state = "input_lost"
        self.last_error = reason
        log.warning("stream %s: %s", self.spec.id, reason)

    # -- analysis thread ---------------------------------------------------------------
    def _analysis_loop(self) -> None:
        next_status = next_levels = 0.0
        frames_since, status_wall = 0, time.time()
        while not self._stop.is_set():
            now = time.time()
            self._watch_input(now)
            if now >= next_status:
                self._status(frames_since / max(now - status_wall, 1e-6))
                frames_since, status_wall, next_status = 0, now, now + STATUS_EVERY_S
            if now >= next_levels:
                self._levels()
                next_levels = now + LEVELS_EVERY_S
            try:
                items = [self._queue.get(timeout=LEVELS_EVERY_S)]
            except queue.Empty:
                continue
            self._gather(items)
            samples: list[tuple[Sample, float]] = []
            for item in items:
                if isinstance(item, _Queued):
                    samples.append((item.sample, item.wall))
                    frames_since += isinstance(item.sample, VideoFrame)
                    continue
                self._analyse(samples)
                if isinstance(item, _SessionStart):
                    self._open_session(item.info, item.wall)
                elif isinstance(item, _SessionEnd) and self._session is not None:
                    self._session.analyzer.flush()
                    self._session = None
                elif isinstance(item, _TsFindings) and self._session is not None:
                    self._session.analyzer.feed_ts(item.events, item.t0)
            self._analyse(samples)
        if self._session is not None:
            self._session.analyzer.flush()
        self._close_monitor_incidents(time.time())

    def _gather(self, items: list[_Item]) -> None:
        """Add to ``items`` what the input hands on in the next moments (GATHER_SHARE
        of ``batch_s``), up to ANALYSIS_BATCH: samples in a row are analysed as one batch
        (StreamAnalyzer.feed_batch), everything else in its place. A batched input
        decodes a burst of samples at once; taken as they came, the analysis would
        run on batches of one sample.

        It sleeps through that moment once and then takes what came: waiting sample
        by sample would wake this thread for each one."""
        if self._queue.qsize() + len(items) < ANALYSIS_BATCH:
            self._stop.wait(self._gather_s)
        while len(items) < ANALYSIS_BATCH:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def _open_session(self, info: StreamInfo, wall: float) -> None:
        tracker = IncidentTracker(
            self.engine.merge_gap_s,
            on_open=lambda i: self._incident(i, opened=True),
            on_close=lambda i: self._incident(i, opened=False),
            keep_history=False,
        )
        analyzer = StreamAnalyzer(
            info,
            self.engine,
            self.detector_keys,
            tracker=tracker,
            profile=True,
            transport_incidents=self.part == 0,  # the other parts' would be the same ones
        )
        if self.escalation is not None:
            analyzer.on_trouble = self.escalation.sign
        self._session = _Session(info, analyzer, wall)
        self._pictures.clear()  # media time starts again

    def _analyse(self, samples: list[tuple[Sample, float]]) -> None:
        """Samples in a row, with their arrival times, analysed as one batch; empties
        ``samples`` for the next run."""
        session = self._session
        if not samples or session is None:
            samples.clear()
            return
        if session.anchor_media is None:
            session.anchor_media, session.anchor_wall = samples[0][0].time, samples[0][1]
        for sample, _ in samples:
            if isinstance(sample, VideoFrame):
                self._current_luma = sample.luma
                if sample.thumbnail is not None:
                    self._thumbnail = sample.thumbnail
                self._pictures.add(sample.time, sample.luma)
        session.analyzer.feed_batch([sample for sample, _ in samples])
        self._watch_lag(session, samples[-1][0].time, time.time())
        samples.clear()

    def _watch_input(self, now: float) -> None:
        """No data for ``input_loss_after_s``: open input_loss (from the last data)."""
        silent_since = self.last_data_wall
        if self.part:  # the first part of a split stream watches the input
            return
        if self._input_loss is None:
            quiet = now - (silent_since or now)
            if self.state == "input_lost" or quiet > self.spec.input_loss_after_s:
                start_wall = silent_since or now
                self._input_loss = self._monitor_incident(
                    "input_loss", start_wall, reason=self.last_error or "no data"
                )
        elif self.state == "ok" and silent_since and now - silent_since < 1.0:
            self._end_monitor_incident(self._input_loss, silent_since)
            self._input_loss = None
            if self.escalation is not None:  # what came back is looked at in full
                self.escalation.sign("input returned")

    def _watch_lag(self, session: _Session, t: MediaTime, now: float) -> None:
        lag = now - session.wall_of(t)
        if lag < 0:  # data came sooner than the first sample suggested: re-anchor
            session.anchor_wall += lag
            lag = 0.0
        self.lag_s = lag
        overloaded = lag > self.spec.max_lag_s or now - self._last_drop_wall < OVERLOAD_HOLD_S
        if overloaded and self._overload is None:
            self._overload = self._monitor_incident(
                "monitor_overload",
                now,
                lag_s=round(lag, 2),
                dropped_samples=self.dropped_samples,
            )
        elif not overloaded and self._overload is not None and lag < self.spec.max_lag_s / 2:
            self._end_monitor_incident(self._overload, now)
            self._overload = None

    # -- incidents ---------------------------------------------------------------------
    def _incident(self, incident: Incident, *, opened: bool) -> None:
        session = self._session
        assert session is not None  # incidents come from a session's tracker
        first_open = not incident.id
        if first_open:
            incident.id = uuid.uuid4().hex
        ended_at = None if incident.end is None else session.wall_of(incident.end)
        if not opened and self._stop.is_set():
            # Closed because the monitor stops, not because the defect ended.
            incident.details["closed_by"] = "monitor stopped"
        self.emit(self._incident_message(incident, session.wall_of(incident.start), ended_at))
        if opened and first_open:
            self._evidence(incident.id, incident.start)
            self._clip_requests.append(incident.id)

    def _evidence(self, incident_id: str, start: MediaTime) -> None:
        assert self._session is not None  # incidents come from a session's tracker
        during = self._session.analyzer.latest_frame
        pictures = {
            "before": self._pictures.before(start),
            "during": None if during is None else during.luma,
        }
        for name, luma in pictures.items():
            if luma is not None:
                self.emit(
                    Evidence(
                        self.spec.id, incident_id, f"{name}.png", "image/png", encode_png(luma)
                    )
                )

    def _monitor_incident(self, type_: str, wall: float, **details: Any) -> Incident:
        incident = Incident(type_, 0.0, None, Severity.CRITICAL, "monitor", details=details)
        incident.id = uuid.uuid4().hex
        self._started_at[incident.id] = wall
        self.emit(self._incident_message(incident, wall, None))
        return incident

    def _end_monitor_incident(self, incident: Incident, wall: float) -> None:
        incident.end = 0.0
        self.emit(self._incident_message(incident, self._started_at.pop(incident.id), wall))

    def _close_monitor_incidents(self, wall: float) -> None:
        for incident in (self._input_loss, self._overload):
            if incident is not None:
                self._end_monitor_incident(incident, wall)
        self._input_loss = self._overload = None

    def _incident_message(
        self, incident: Incident, started_at: float, ended_at: float | None
    ) -> IncidentUpdate:
        report = incident.to_report()  # media times rounded as in a check's report
        return IncidentUpdate(
            id=incident.id,
            stream=self.spec.id,
            type=incident.type,
            severity=incident.severity.value,
            detector=incident.detector,
            start=report["start"],
            end=report["end"],
            started_at=started_at,
            ended_at=ended_at,
            open=incident.end is None,
            details={**incident.details, "part": self.part} if self.part else incident.details,
            key=incident.key,
        )

    # -- status ------------------------------------------------------------------------
    def _status(self, fps: float) -> None:
        now, session, latest = time.time(), self._session, self._current_luma
        ts = self._ts
        status = StreamStatus(
            state="overloaded" if self._overload is not None else self.state,
            fps=round(fps, 2),
            lag_s=round(self.lag_s, 3),
            bytes_read=self.bytes_read,
            dropped_samples=self.dropped_samples,
            reconnects=self.reconnects,
            last_data_at=self.last_data_wall,
            last_error=self.last_error,
            at=now,
            ts=(
                {"packets": ts.packet_index, "errors": dict(ts.counts)}
                if ts is not None and ts.packet_index
                else None
            ),
            detector_seconds=None if session is None else dict(session.analyzer.detector_seconds),
            analysis=self.engine.analysis,
            escalation=None if self.escalation is None else self.escalation.status(),
            media=None
            if session is None
            else {
                "video": None if session.info.video is None else session.info.video.codec,
                "audio": None if session.info.audio is None else session.info.audio.codec,
            },
        )
        self.emit(
            StatusReport(
                self.spec.id,
                status,
                signals={}
                if session is None
                else session.signals.fresh(session.analyzer.detectors),
                thumbnail=None
                if self.part
                else self._thumbnail or (None if latest is None else encode_png(latest)),
                part=self.part,
            )
        )

    def _levels(self) -> None:
        """The audio meters since the last reading, with the short-term loudness."""
        session = self._session
        if self.part:  # a split stream's meters come from its first part
            return
        meter = None if session is None else session.analyzer.meter
        levels = None if meter is None else meter.read()
        if session is None or levels is None:
            return
        report: dict[str, Any] = levels.to_api()
        for detector in session.analyzer.detectors:
            if isinstance(detector, LoudnessDetector):
                short_term = detector.signals.get("short_term_lufs")
                report["short_term_lufs"] = round(short_term[-1][1], 1) if short_term else None
                report["target_lufs"] = detector.target
        self.emit(LevelsReport(self.spec.id, report))
