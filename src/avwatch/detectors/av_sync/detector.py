"""Lip sync: the offset between what is seen and what is heard, measured all the time.

Every ``hop_s`` the detector correlates the last ``window_s`` of visual
activity with audio activity (avwatch.detectors.av_sync.correlation) over lags of ±``max_lag_ms``.
Visual activity is the picture change of the mouth region when a face is in
view (OpenCV's bundled Haar cascade, run every ``face_interval_s``), of the
whole picture otherwise: a talking head's mouth follows the syllables, while
its head and the background do not. Line-up patterns (flash and beep) and
cuts or impacts with sound are found the same way, through the whole picture.

Each estimate is dated at the centre of its window, so a step change of offset
is placed where it happened, not one window later. Windows without usable
evidence are "unknown" and never raise or close anything: a flat or
ambiguous correlation, a best lag at the edge of the search range (the true
one may lie beyond it), damage inside the window (a decoder error, a gap
in the pictures), or a freeze inside it (moving pictures held still for
``max_frozen_s``: its start and end line up with onsets in any sound). An
estimate counts only once ``min_agreeing`` estimates in a row agree within
``step_ms``: on content whose sound has nothing to do with its pictures, a
lone window now and then correlates by chance, and its neighbours do not
agree with it. An ``av_sync`` incident opens when counted
estimates stay beyond the limits of ITU-R BT.1359 (audio more than 45 ms
early or 125 ms late by default) for ``min_duration_s``; a later step to
another offset starts a new one. Exposed as ``av_offset_ms`` (counted
estimates) and ``av_sync_confidence`` (every window's best correlation).
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import Field

from avwatch.detectors.av_sync.correlation import AudioLevels, OffsetEstimate, estimate_offset
from avwatch.detectors.base import Detector, DetectorConfig, Plot, RunTracker
from avwatch.types import AudioBlock, DecodeIssue, MediaTime, Severity, StreamInfo, VideoFrame

Box = tuple[int, int, int, int]  # x, y, width, height of the mouth region
MIN_FACE_PX = 24  # the cascade's own training size
# While no face is found, searches slow down, to one every sixth interval (12 s by
# default): a search is the costliest step of lip sync. A face coming into view after
# a long faceless stretch is then found up to 12 s later; a lip-sync alarm needs an
# 8 s window and a 3 s run in any case.
MAX_BACKOFF = 6
# A freeze: pictures that were moving, repeated. Pictures repeated one or two at a
# time (pulldown, 10 fps shown at 25) still move; a still pattern flashed every
# second has a changed picture in six or more.
STILL_LEVEL = 0.5  # mean change per pixel (of 255) under which a picture is repeated
MOVING_SHARE = 1 / 3  # pictures that changed, of those beside a still run: moving
MAX_SEGMENTS = 200  # kept in the summary; a stream running for months keeps the last ones
# A segment's offset is the median of its last estimates: 10 min of them at the default hop.
# A stream in sync for weeks is one segment, and must not keep (or sort) all of them.
SEGMENT_ESTIMATES_KEPT = 600


class AvSyncConfig(DetectorConfig):
    max_audio_early_ms: float = Field(
        45.0, ge=0.0, le=1000.0, description="Alarm when audio leads the picture by more (BT.1359)."
    )
    max_audio_late_ms: float = Field(
        125.0, ge=0.0, le=1000.0, description="Alarm when audio lags the picture by more (BT.1359)."
    )
    max_lag_ms: int = Field(
        500, ge=100, le=2000, description="Largest offset searched, either way (ms)."
    )
    window_s: float = Field(
        8.0, ge=2.0, le=60.0, description="Seconds of media behind each estimate."
    )
    hop_s: float = Field(1.0, ge=0.2, le=10.0, description="Seconds between estimates.")
    min_correlation_ratio: float = Field(
        0.35,
        ge=0.0,
        le=1.0,
        description="Correlation the best lag needs before the estimate is trusted.",
    )
    min_margin_ratio: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="How far the best lag must stand above any other candidate.",
    )
    min_peak_sigmas: float = Field(
        6.0,
        ge=0.0,
        le=100.0,
        description="How many robust standard deviations the best lag's correlation must "
        "stand above the median over all lags (chance alignments of unrelated pictures and "
        "sound reach about 5; a face or cuts with their sound, 8 and far more).",
    )
    max_one_moment_ratio: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Largest share of the correlation one frame may carry: evidence must "
        "come from several moments, not one event (a freeze's end, a cut) against one "
        "onset in music, which every window holding it would agree on.",
    )
    max_frozen_s: float = Field(
        0.5,
        ge=0.0,
        le=10.0,
        description="Moving pictures held still this long inside a window (a freeze) "
        "leave it unknown: the freeze's start and end line up with onsets in any sound "
        "(0: never).",
    )
    min_duration_s: float = Field(
        3.0, ge=0.0, le=3600.0, description="Shortest out-of-sync run reported."
    )
    min_agreeing: int = Field(
        3,
        ge=1,
        le=60,
        description="Estimates in a row that must agree (within step_ms) before any of "
        "them counts; fewer are chance, and lip sync stays unknown.",
    )
    step_ms: float = Field(
        40.0,
        ge=1.0,
        le=1000.0,
        description="A confident offset this far from the current run's starts a new one.",
    )
    faces: bool = Field(True, description="Watch the mouth of a detected face when one is seen.")
    face_interval_s: float = Field(
        2.0, ge=0.1, le=60.0, description="Seconds between face searches."
    )
    min_face_height_ratio: float = Field(
        0.2,
        ge=0.05,
        le=1.0,
        description="Smallest face watched, as a share of the picture height (smaller "
        "faces cost more to find and show too little of the mouth).",
    )


class AvSyncDetector(Detector[AvSyncConfig]):
    key = "av_sync"
    needs = frozenset({"video", "audio"})
    emits = ("av_sync",)
    Config = AvSyncConfig
    description = "Audio/video offset (lip sync) from patterns, cuts and mouths; BT.1359 limits."
    plots = (
        Plot("A/V offset (ms, + = audio late)", ("av_offset_ms",)),
        Plot("A/V sync confidence (correlation at the offset)", ("av_sync_confidence",)),
    )

    def __init__(self, config: AvSyncConfig, info: StreamInfo) -> None:
        super().__init__(config, info)
        keep_s = config.window_s + 2 * config.max_lag_ms / 1000 + 2.0
        self.levels = AudioLevels(keep_s)
        self.frames: deque[tuple[int, float, float]] = deque()  # (ms, whole, mouth or NaN)
        self.frame_ms: deque[int] = deque(maxlen=50)  # recent frame durations, for the median
        self.previous: npt.NDArray[np.uint8] | None = None
        self.video_end: MediaTime = 0.0  # where the last picture ends
        self.mouths = (
            _MouthFinder(config.face_interval_s, config.min_face_height_ratio)
            if config.faces
            else None
        )
        self.next_estimate: MediaTime | None = None
        self.run = RunTracker(config.min_duration_s, end_hold_s=config.window_s)
        self.out_of_limits: deque[tuple[MediaTime, float]] = deque(maxlen=3600)
        self.estimates = 0
        self.last_known_at: MediaTime | None = None
        # The open segment: where it began, its estimates' count, the latest of them
        # (centre, offset).
        self.segment_start: MediaTime = 0.0
        self.segment_estimates = 0
        self.known: deque[tuple[MediaTime, float]] = deque(maxlen=SEGMENT_ESTIMATES_KEPT)
        self.segments: deque[dict[str, Any]] = deque(maxlen=MAX_SEGMENTS)
        self.not_judged_s = 0.0  # media time patrolled: pictures too sparse to judge
        self.agreeing: list[tuple[MediaTime, float]] = []  # known estimates not yet counted
        self.damaged: deque[MediaTime] = deque(maxlen=1000)  # times of decoder trouble

    # -- feeding ----------------------------------------------------------------------
    def on_video(self, frame: VideoFrame) -> None:
        if frame.sampled:
            self._not_judged(frame)
            return
        luma = frame.luma
        whole = mouth = np.nan
        # A frame after a gap has no "previous picture" to differ from.
        if self.previous is not None and frame.time - self.video_end < frame.duration / 2:
            whole = cv2.norm(luma, self.previous, cv2.NORM_L1) / luma.size
            box = self.mouths.box(luma, frame.time) if self.mouths else None
            if box is not None:
                x, y, w, h = box
                region = luma[y : y + h, x : x + w]
                earlier = self.previous[y : y + h, x : x + w]
                mouth = cv2.norm(region, earlier, cv2.NORM_L1) / region.size
        self.previous, self.video_end = luma, frame.time + frame.duration
        self.frames.append((round(frame.time * 1000), whole, mouth))
        self.frame_ms.append(round(frame.duration * 1000))
        if self.next_estimate is None:
            self.next_estimate = frame.time + self.config.window_s
        self._maybe_estimate()

    def _not_judged(self, frame: VideoFrame) -> None:
        """A patrolled keyframe: the pictures around it are not decoded, so the sound has
        nothing to be matched against. Lip sync is not judged (never "in sync") until
        pictures come in full again; what was being judged ends here."""
        if self.next_estimate is not None:
            self._close()
            self._end_segment()
        self.frames.clear()
        self.agreeing.clear()
        self.previous, self.next_estimate = None, None
        self.video_end = frame.time + frame.duration
        self.not_judged_s += frame.duration

    def on_audio(self, block: AudioBlock) -> None:
        self.levels.feed(block)
        self._maybe_estimate()

    def on_issue(self, issue: DecodeIssue) -> None:
        self.damaged.append(issue.time)

    def _maybe_estimate(self) -> None:
        """Estimate once the window's video and the audio any lag could read have arrived."""
        c = self.config
        while (
            self.next_estimate is not None
            and self.video_end >= self.next_estimate
            and self.levels.end / 1000 >= self.next_estimate + c.max_lag_ms / 1000 + 0.1
        ):
            self._estimate(self.next_estimate)
            self.next_estimate += c.hop_s

    # -- estimating -------------------------------------------------------------------
    def _estimate(self, until: MediaTime) -> None:
        c = self.config
        start_ms, until_ms = round((until - c.window_s) * 1000), round(until * 1000)
        while self.frames and self.frames[0][0] < start_ms:
            self.frames.popleft()
        window = np.array([f for f in self.frames if f[0] < until_ms], dtype=np.float64)
        self.estimates += 1
        estimate = None
        if (
            len(window)
            and not self._damaged(window[:, 0], start_ms, until_ms)
            and not (c.max_frozen_s and _frozen(window[:, 1], self._frames_in(c.max_frozen_s)))
        ):
            with_mouth = ~np.isnan(window[:, 2])
            # The mouth when a face was in view for most of the window, else the picture.
            column = 2 if with_mouth.mean() >= 0.8 else 1
            usable = ~np.isnan(window[:, column])
            estimate = estimate_offset(
                window[usable, 0].astype(np.int64),
                int(statistics.median(self.frame_ms)),
                window[usable, column],
                self.levels,
                c.max_lag_ms,
                c.min_correlation_ratio,
                c.min_margin_ratio,
                c.min_peak_sigmas,
                c.max_one_moment_ratio,
            )
        self._judge(until - c.window_s / 2, estimate)

    def _frames_in(self, seconds: float) -> int:
        return max(2, round(seconds * 1000 / max(statistics.median(self.frame_ms), 1)))

    def _damaged(self, frame_ms: npt.NDArray[np.float64], start_ms: int, until_ms: int) -> bool:
        """Whether decoder trouble or a gap in the pictures lies inside the window: the
        sound and pictures around it need not line up (a cut, concealed pictures)."""
        if any(start_ms <= t * 1000 < until_ms for t in self.damaged):
            return True
        edges = np.concatenate(([start_ms], frame_ms, [until_ms]))
        return bool(np.diff(edges).max() > 3 * statistics.median(self.frame_ms))

    def _judge(self, at: MediaTime, estimate: OffsetEstimate | None) -> None:
        c = self.config
        if estimate is not None:
            self.record("av_sync_confidence", at, estimate.correlation)
        if estimate is None or not estimate.known:
            return  # no evidence: neither raises nor clears an alarm
        offset = estimate.offset_ms
        agreeing = self.agreeing
        if agreeing and (
            at - agreeing[-1][0] > c.window_s
            or abs(offset - _median([o for _, o in agreeing])) > c.step_ms
        ):
            agreeing.clear()  # disagrees, or comes after a long unknown stretch: start over
        agreeing.append((at, offset))
        if len(agreeing) < c.min_agreeing:
            return
        for when, value in (
            agreeing[-c.min_agreeing :] if len(agreeing) == c.min_agreeing else [(at, offset)]
        ):
            self._count(when, value)
        del agreeing[: -c.min_agreeing]  # what the median of the next needs

    def _count(self, at: MediaTime, offset: float) -> None:
        """An estimate its neighbours agree with: it raises, holds or clears an alarm."""
        c = self.config
        hop = c.hop_s
        self.record("av_offset_ms", at, offset)
        # Evidence after none (the stream's start, a long unknown stretch) speaks for its
        # whole window; after other evidence, a change is dated at the window's centre.
        fresh = self.last_known_at is None or at - self.last_known_at > c.window_s
        self.last_known_at = at
        start = at - (c.window_s if fresh else hop) / 2
        self._segment(start, at, offset)
        out = offset > c.max_audio_late_ms or offset < -c.max_audio_early_ms
        if out and self.run.active and abs(offset - self._run_offset(self.run.start)) > c.step_ms:
            self._close()  # a step to another wrong offset: end this incident, begin the next
        if out:
            self.out_of_limits.append((at, offset))
        began = self.run.start
        for phase, time in self.run.update(out, start, at + hop / 2):
            if phase == "end":
                self._emit(phase, time, self._run_offset(began, until=time))
            else:  # a start is back-dated: its offset is that of the estimates so far
                self._emit(phase, time, self._run_offset(self.run.start))

    def _segment(self, start: MediaTime, at: MediaTime, offset: float) -> None:
        """Runs of estimates that agree, for the report: where each offset held."""
        if self.known and abs(offset - _median([o for _, o in self.known])) > self.config.step_ms:
            self._end_segment()
        if not self.known:
            self.segment_start = start
        self.known.append((at, offset))
        self.segment_estimates += 1

    def _end_segment(self, end: MediaTime | None = None) -> None:
        if self.known:
            self.segments.append(
                {
                    "start": round(self.segment_start, 3),
                    "end": round(
                        self.known[-1][0] + self.config.hop_s / 2 if end is None else end, 3
                    ),
                    "offset_ms": round(_median([o for _, o in self.known]), 1),
                    "estimates": self.segment_estimates,
                }
            )
            self.known.clear()
            self.segment_estimates = 0

    def _run_offset(self, since: MediaTime | None, until: MediaTime = float("inf")) -> float:
        """Median offset of the out-of-limits estimates dated within [since, until]."""
        lo = -float("inf") if since is None else since
        return _median([o for at, o in self.out_of_limits if lo <= at <= until])

    def _close(self) -> None:
        began = self.run.start
        for phase, time in self.run.flush():
            self._emit(phase, time, self._run_offset(began, until=time))

    def _emit(self, phase: str, time: MediaTime, offset: float) -> None:
        late = offset > 0
        limit = self.config.max_audio_late_ms if late else self.config.max_audio_early_ms
        # Twice the limit is well past what viewers forgive (BT.1359's "acceptable" is ~1.5x).
        severity = Severity.ERROR if abs(offset) >= 2 * limit else Severity.WARNING
        self.emit("av_sync", phase, time, severity, offset_ms=round(offset, 1))

    def flush(self, end: MediaTime) -> None:
        # The last windows, with what audio there is: frames whose lags would read past
        # its end drop out of the estimate.
        while self.next_estimate is not None and self.next_estimate <= self.video_end:
            self._estimate(self.next_estimate)
            self.next_estimate += self.config.hop_s
        # Nothing comes after the last window: it speaks for the media to its end.
        tail = self.last_known_at is not None and self.video_end - self.last_known_at <= (
            self.config.window_s / 2 + self.config.hop_s
        )
        if tail and self.run.active and self.out_of_limits[-1][0] == self.last_known_at:
            self.run.last_active_end = self.video_end
        self._close()
        self._end_segment(self.video_end if tail else None)

    def summary(self) -> dict[str, Any]:
        offsets = [offset for _, offset in self.signals.get("av_offset_ms", ())]
        return {
            "offset_ms": round(_median(offsets), 1) if offsets else None,
            "estimates": self.estimates,
            "known_share": round(len(offsets) / self.estimates, 3) if self.estimates else 0.0,
            "segments": list(self.segments),
            **({"not_judged_s": round(self.not_judged_s, 1)} if self.not_judged_s else {}),
        }

    @classmethod
    def report_lines(cls, summary: dict[str, Any]) -> list[str]:
        not_judged = summary.get("not_judged_s")
        if not not_judged:
            return []
        return [f"lip sync: not judged for {not_judged:g} s (patrol: keyframes only)"]


def _frozen(change: npt.NDArray[np.float64], least: int) -> bool:
    """Whether a window's pictures stopped dead for ``least`` frames next to pictures
    that were moving (a freeze, begun or ended inside the window); a line-up pattern
    still between its flashes is still on both sides."""
    still = np.concatenate(([0], (change < STILL_LEVEL).astype(np.int8), [0]))  # NaN: not
    edges = np.flatnonzero(np.diff(still))
    for first, after in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        if after - first < least:
            continue
        for side in (change[max(0, first - least) : first], change[after : after + least]):
            side = side[~np.isnan(side)]
            if side.size and np.count_nonzero(side >= STILL_LEVEL) >= MOVING_SHARE * side.size:
                return True
    return False


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


_per_thread = threading.local()


def _face_cascade() -> Any:
    """OpenCV's frontal-face cascade, loaded once per thread: reading its XML is slow,
    and a monitor builds its detectors anew for every connection (a looping file:
    each loop). One per thread, as OpenCV does not promise that one classifier
    may search in two threads at once."""
    cascade = getattr(_per_thread, "face_cascade", None)
    if cascade is None:
        # alt2 (a cascade of small trees) rejects a window sooner than the default
        # cascade: a search costs about a quarter less and found the same faces.
        path = cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml"  # type: ignore[attr-defined]
        cascade = _per_thread.face_cascade = cv2.CascadeClassifier(path)
    return cascade


class _MouthFinder:
    """Where the mouth of the most prominent face is, refreshed every ``interval_s``.

    The search runs on a picture made just small enough that the smallest face
    worth watching (``min_face_height_ratio`` of the picture height) meets the
    cascade's 24-pixel window: a talking head is large, and a smaller search
    picture costs a fraction of the analysis picture's. A face lost for one search
    keeps its last place: the cascade misses now and then on a face that has not moved.
    """

    def __init__(self, interval_s: float, min_face_height_ratio: float) -> None:
        cv2.setNumThreads(1)  # one stream per core: OpenCV's own thread pool would contend
        self.cascade = _face_cascade()
        self.interval_s = interval_s
        self.min_face_height_ratio = min_face_height_ratio
        self.next_search: MediaTime = 0.0
        self.mouth: Box | None = None
        self.misses = 0

    def box(self, luma: npt.NDArray[np.uint8], time: MediaTime) -> Box | None:
        if time >= self.next_search:
            face = self._search(luma)
            if face is not None:
                x, y, w, h = face
                # The lower third of the face box, inner half of its width.
                self.mouth = (x + w // 4, y + (2 * h) // 3, max(1, w // 2), max(1, h // 3))
                self.misses = 0
            else:
                self.misses += 1
                if self.misses > 1:
                    self.mouth = None
            # Content without faces (most of it) is searched less and less often.
            self.next_search = time + self.interval_s * min(MAX_BACKOFF, 1 + self.misses)
        return self.mouth

    def _search(self, luma: npt.NDArray[np.uint8]) -> Box | None:
        height, width = luma.shape
        scale = min(1.0, MIN_FACE_PX / (self.min_face_height_ratio * height))
        small: npt.NDArray[Any] = luma
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(luma, size, interpolation=cv2.INTER_AREA)
        faces = self.cascade.detectMultiScale(
            small, scaleFactor=1.3, minNeighbors=3, minSize=(MIN_FACE_PX, MIN_FACE_PX)
        )
        if not len(faces):
            return None
        x, y, w, h = (int(v / scale) for v in max(faces, key=lambda f: f[2] * f[3]))
        return x, y, w, h
