"""``check()``: one file or a bounded window of a live stream, end to end in one process.

source → TS tap → decoder → ``StreamAnalyzer`` → incidents, in one thread; the
whole of ``avwatch check``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avwatch.analysis.analyzer import ANALYSIS_BATCH, StreamAnalyzer
from avwatch.analysis.escalation import Escalation
from avwatch.analysis.incidents import IncidentTracker
from avwatch.analysis.recording import THUMBNAIL_EVERY_S, Recording
from avwatch.config import EngineConfig
from avwatch.decode.reader import MediaReader
from avwatch.input.source import close_input, open_input
from avwatch.transport.analyser import TsAnalyzer
from avwatch.types import (
    AudioBlock,
    DecodeIssue,
    Incident,
    MediaTime,
    Sample,
    StreamInfo,
    VideoFrame,
)

__all__ = ["CheckResult", "ProgressCallback", "check", "make_reader"]

ProgressCallback = Callable[[MediaTime], None]


def make_reader(
    container: Any,
    source: str,
    config: EngineConfig,
    *,
    on_packet: Callable[[Any], None] | None = None,
) -> MediaReader:
    """The ``MediaReader`` that ``config`` describes (analysis picture, decoder threads)."""
    return MediaReader(
        container,
        source,
        analysis_width=config.analysis_width,
        interpolation=config.analysis_interpolation,
        decoder_threads=config.decoder_threads,
        error_detection=config.decoder_error_detection,
        analysis=config.analysis,
        on_packet=on_packet,
    )


@dataclass
class CheckResult:
    info: StreamInfo
    incidents: list[Incident]
    summary: dict[str, Any]
    """Whole-stream figures: decoding, each detector's summary, TR 101 290 (the
    report's ``metrics``)."""
    duration_s: MediaTime
    video_frames: int
    wall_s: float
    cpu_s: float
    detector_seconds: dict[str, float]
    signals: dict[str, list[tuple[MediaTime, float]]] = field(default_factory=dict)
    """Every detector's per-sample measurements (the latest ten minutes of each)."""
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Every detector's effective options."""


def check(
    url: str,
    config: EngineConfig | None = None,
    detectors: Iterable[str] | None = None,
    *,
    duration_s: float | None = None,
    on_progress: ProgressCallback | None = None,
    on_info: Callable[[StreamInfo], None] | None = None,
    profile: bool = False,
    input_options: dict[str, str] | None = None,
    recording: Recording | None = None,
) -> CheckResult:
    """Quality-check one file or URL (for live URLs, give ``duration_s``).
    ``input_options`` go to libavformat (e.g. ``{"listen": "1"}`` to receive RTMP).
    A ``recording`` is given the whole file's signals, levels and pictures."""
    config = config or EngineConfig()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    ts = TsAnalyzer()
    container = open_input(
        url,
        open_timeout_s=config.open_timeout_s,
        read_timeout_s=config.read_timeout_s,
        ts_analyzer=ts,
        options=input_options,
    )
    try:
        reader = make_reader(container, url, config)
        if on_info:
            on_info(reader.info)
        tracker = IncidentTracker(
            config.merge_gap_s, on_open=None if recording is None else recording.opened
        )
        analyzer = StreamAnalyzer(reader.info, config, detectors, tracker=tracker, profile=profile)
        if recording is not None:
            recording.begin(reader.info)
            reader.thumbnail_every_s = THUMBNAIL_EVERY_S
            for d in analyzer.detectors:
                d.recorder = recording.signal
        escalation = None
        if config.analysis == "patrol":  # on the media clock: where the analysis has got to
            # The slice's phase by the file's name, not its folder: the same file checked
            # from anywhere is analysed the same way.
            name = url if "://" in url else Path(url).name
            escalation = Escalation(config.escalation, lambda: analyzer.stats.end, name=name)
            reader.full_wanted, analyzer.on_trouble = escalation.full_wanted, escalation.sign
        end: MediaTime | None = None
        batch: list[Sample] = []

        def analyse_batch() -> None:
            # The transport findings first: the bytes behind them were read before
            # the batch's pictures could be decoded (a damaged picture names its cause).
            if ts.events and reader.t0 is not None:
                analyzer.feed_ts(ts.events, reader.t0)
            analyzer.feed_batch(batch)
            if recording is not None:
                _record(recording, batch)
            if on_progress and batch:
                on_progress(batch[-1].time)
            batch.clear()

        for sample in reader.samples():
            if (
                duration_s is not None
                and sample.time >= duration_s
                and not isinstance(sample, DecodeIssue)
            ):
                end = duration_s
                break
            batch.append(sample)
            if len(batch) >= ANALYSIS_BATCH or (
                # Patrol: 32 samples are mostly audio, seconds of media. The keyframe that
                # shows trouble is judged before the reader reaches the next one, which
                # it then decodes in full.
                escalation is not None and isinstance(sample, VideoFrame)
            ):
                analyse_batch()
        analyse_batch()
    finally:
        close_input(container)  # also hands the analyser the last bytes it had not seen
    ts.finish()
    analyzer.feed_ts(ts.events, reader.t0 or 0.0)
    analyzer.flush(end)
    if escalation is not None:
        analyzer.escalation = {
            k: v
            for k, v in escalation.status().items()
            if k not in ("analysing", "why", "lip_sync")
        }
    if ts.packet_index:
        analyzer.ts_summary = ts.summary()
    if recording is not None:
        recording.finish()
    return CheckResult(
        info=reader.info,
        incidents=analyzer.tracker.sorted(),
        summary=analyzer.summary(),
        duration_s=end if end is not None else analyzer.stats.end,
        video_frames=analyzer.stats.video_frames,
        wall_s=time.perf_counter() - wall0,
        cpu_s=time.process_time() - cpu0,
        detector_seconds=dict(analyzer.detector_seconds),
        signals={
            name: list(series) for d in analyzer.detectors for name, series in d.signals.items()
        },
        settings={d.key: d.config.model_dump(mode="json") for d in analyzer.detectors},
    )


def _record(recording: Recording, batch: list[Sample]) -> None:
    for sample in batch:
        if isinstance(sample, VideoFrame) and sample.thumbnail is not None:
            recording.picture(sample.time, sample.thumbnail)
        elif isinstance(sample, AudioBlock):
            recording.audio(sample)
