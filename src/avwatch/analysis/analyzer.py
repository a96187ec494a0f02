"""``StreamAnalyzer``: one stream's detectors fed in memory, their events made incidents.

``check()`` (analysis/check.py) and every live monitor of the service drive one.
Samples go to every detector in memory; nothing is copied for a detector that
does not ask for it.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from avwatch.analysis.incidents import IncidentTracker
from avwatch.analysis.meters import AudioMeter
from avwatch.config import EngineConfig, detector_config, detector_options
from avwatch.detectors.base import Detector, select
from avwatch.errors import ConfigError
from avwatch.transport.analyser import TsEvent
from avwatch.transport.tr101290 import TR101290_TYPES, defect_events
from avwatch.types import (
    AudioBlock,
    DecodeIssue,
    MediaTime,
    Sample,
    StreamInfo,
    TransportFinding,
    VideoFrame,
)

__all__ = ["ANALYSIS_BATCH", "DecodeStats", "StreamAnalyzer", "media_time"]

PTS_WRAP_S = (1 << 33) / 90_000


def media_time(clock: float, t0: MediaTime) -> MediaTime:
    """A time of the PTS clock on the media timeline, across the 33-bit wrap."""
    return (clock - t0 + PTS_WRAP_S / 2) % PTS_WRAP_S - PTS_WRAP_S / 2


# Samples decoded before the detectors take them, each over the whole batch: about
# a second of SD video with its audio, so that decoder and detectors each keep their
# working set in the CPU caches for a while.
ANALYSIS_BATCH = 32


@dataclass
class DecodeStats:
    video_frames: int = 0
    sampled_frames: int = 0  # patrolled keyframes, each standing for its GOP
    key_spacing_s: float = 0.0  # the longest span a patrolled keyframe stood for
    audio_blocks: int = 0
    issues: Counter[str] = field(default_factory=Counter)
    first_issues: list[dict[str, Any]] = field(default_factory=list)
    video_end: MediaTime = 0.0
    audio_end: MediaTime = 0.0

    @property
    def end(self) -> MediaTime:
        return max(self.video_end, self.audio_end)


class StreamAnalyzer:
    """Runs the selected detectors on one stream's samples and tracks incidents."""

    def __init__(
        self,
        info: StreamInfo,
        config: EngineConfig,
        keys: Iterable[str] | None = None,
        *,
        tracker: IncidentTracker | None = None,
        profile: bool = False,
        transport_incidents: bool = True,
    ) -> None:
        """``transport_incidents``: whether TR 101 290 findings become incidents here
        (the detectors are told of them either way)."""
        classes = select(keys)
        unknown = set(config.detectors) - set(select(None))
        if unknown:
            raise ConfigError(f"config names unknown detectors: {', '.join(sorted(unknown))}")
        self.info = info
        self.detectors: list[Detector[Any]] = []
        self.skipped: dict[str, str] = {}
        for key, cls in classes.items():
            declined = cls.accepts(info)
            if declined is not None:
                self.skipped[key] = declined
                continue
            self.detectors.append(cls(detector_config(cls, detector_options(config, cls)), info))
        self._video = [d for d in self.detectors if "video" in (d.reads or d.needs)]
        self._audio = [d for d in self.detectors if "audio" in (d.reads or d.needs)]
        self._transport = [d for d in self.detectors if d.takes_transport()]
        self.tracker = tracker or IncidentTracker(config.merge_gap_s)
        self.transport_incidents = transport_incidents
        self.stats = DecodeStats()
        self.profile = profile
        self.detector_seconds: dict[str, float] = defaultdict(float)
        self.ts_summary: dict[str, Any] | None = None
        self.latest_frame: VideoFrame | None = None
        self.analysis = config.analysis
        self.operating_point = config.profile
        fps = info.video.fps if info.video is not None else None
        self._frame_s = 1 / fps if fps else 0.04
        self.on_trouble: Callable[[str], None] | None = None
        """Told of each sign of trouble (an incident opening, a transport error, a run a
        detector suspects): a patrolled stream's escalation listens."""
        self.escalation: dict[str, Any] | None = None  # its figures, for the summary
        audio = info.audio
        self.meter = AudioMeter(audio.channel_names) if audio and audio.channels else None
        """Per-channel peak and RMS since its last reading: the meters of a tile, the
        levels of an HTML report."""

    def feed_batch(self, samples: Sequence[Sample]) -> None:
        """Samples in stream order. Each detector takes the whole batch in turn, so its
        code and state stay in the CPU caches between calls (see ANALYSIS_BATCH); each
        still sees its own samples, and the decoder's issues, in order."""
        stats = self.stats
        for sample in samples:
            if isinstance(sample, VideoFrame):
                stats.video_frames += 1
                stats.sampled_frames += sample.sampled
                # A patrolled keyframe's span is a guess of where the next one comes: the
                # media is known to last as far as its own picture.
                shown = self._frame_s if sample.sampled else sample.duration
                if sample.sampled:
                    stats.key_spacing_s = max(stats.key_spacing_s, sample.duration)
                stats.video_end = max(stats.video_end, sample.time + shown)
            elif isinstance(sample, AudioBlock):
                stats.audio_blocks += 1
                stats.audio_end = max(stats.audio_end, sample.end)
                if self.meter is not None:
                    self.meter.add(sample)
            else:
                self._note_issue(sample)
        for d in self.detectors:
            video, audio = d in self._video, d in self._audio
            for sample in samples:
                if isinstance(sample, VideoFrame):
                    self.latest_frame = sample  # the picture an incident opened now shows
                    if video:
                        self._call(d, d.on_video, sample)
                elif isinstance(sample, AudioBlock):
                    if audio:
                        self._call(d, d.on_audio, sample)
                else:
                    self._call(d, d.on_issue, sample)
        if self.on_trouble is not None:
            suspect = next((d.key for d in self.detectors if d.suspects()), None)
            if suspect is not None:
                self.on_trouble(f"{suspect} suspected")

    def feed_ts(self, events: list[TsEvent], t0: MediaTime) -> None:
        """TR 101 290 findings, placed on the media timeline (their clock is PCR/PTS
        seconds; ``t0`` is the first displayed frame's PTS in the same seconds)."""
        for ts_event in events:
            at = max(0.0, (ts_event.time if ts_event.time is not None else t0) - t0)
            details = ts_event.details
            if details.get("splice_clock") is not None:  # an SCTE-35 cue's splice time
                details = {**details, "splice_at": media_time(details["splice_clock"], t0)}
            finding = TransportFinding(ts_event.type, at, ts_event.pid, ts_event.packet, details)
            for d in self._transport:
                self._call(d, d.on_transport, finding)
            if self.transport_incidents and ts_event.type in TR101290_TYPES:
                # The other types are news for their detectors only.
                for event in defect_events(finding, ts_event.details):
                    self.tracker.feed(event)
                if self.on_trouble is not None:
                    self.on_trouble(ts_event.type)
        events.clear()

    def _note_issue(self, issue: DecodeIssue) -> None:
        self.stats.issues[issue.kind] += 1
        if len(self.stats.first_issues) < 20:
            self.stats.first_issues.append(
                {
                    "time": round(issue.time, 3),
                    "kind": issue.kind,
                    "media": issue.media,
                    "message": issue.message,
                }
            )

    def _call(self, detector: Detector[Any], method: Callable[[Any], None], arg: Any) -> None:
        if self.profile:
            # CPU time of this thread: wall time would also count the moments the
            # decoder's threads had the core.
            t = time.thread_time()
            method(arg)
            self.detector_seconds[detector.key] += time.thread_time() - t
        else:
            method(arg)
        if detector.events:
            for event in detector.events:
                self.tracker.feed(event)
                if event.phase == "start" and self.on_trouble is not None:
                    self.on_trouble(event.type)
            detector.events.clear()

    def flush(self, end: MediaTime | None = None) -> None:
        end = self.stats.end if end is None else end
        for d in self.detectors:
            self._call(d, d.flush, end)
        self.tracker.close_all(end)

    def summary(self) -> dict[str, Any]:
        """The report's ``metrics``: decoding, every detector's summary, TR 101 290."""
        out: dict[str, Any] = {
            "profile": self.operating_point,
            "decode": {
                "video_frames": self.stats.video_frames,
                "audio_blocks": self.stats.audio_blocks,
                "issues": dict(self.stats.issues),
                "first_issues": self.stats.first_issues,
            },
        }
        if self.analysis != "full":
            out["analysis"] = {
                "tier": self.analysis,
                "keyframes_alone": self.stats.sampled_frames,
                "keyframe_spacing_s": round(self.stats.key_spacing_s, 3),
                "pictures_in_full": self.stats.video_frames - self.stats.sampled_frames,
                **(self.escalation or {}),
            }
        for d in self.detectors:
            summary = d.summary()
            if summary:
                out[d.key] = summary
        if self.skipped:
            out["skipped_detectors"] = self.skipped
        if self.ts_summary is not None:
            out["ts"] = self.ts_summary
        return out
