"""What an HTML report draws, gathered while a check runs: every detector signal and
every channel's level over the whole file, a filmstrip, and a picture of each incident.

Memory stays flat for any length of file: series are bucketed (analysis/series.py),
the filmstrip thins itself, and pictures wait in a ring of the last half minute for
the incidents that open (incidents are dated back to where the defect began).
"""

from __future__ import annotations

from collections import deque

from avwatch.analysis.meters import AudioMeter, Levels
from avwatch.analysis.series import WholeSeries
from avwatch.types import AudioBlock, Incident, MediaTime, StreamInfo

__all__ = ["Recording"]

THUMBNAIL_EVERY_S = 1.0
LEVELS_EVERY_S = 0.1
RECENT_PICTURES = 32  # a little over the longest back-dating of an incident's start
STRIP_PICTURES = 48
MAX_INCIDENT_PICTURES = 1000


class Recording:
    def __init__(self, points: int = 1000) -> None:
        self.points = points
        self.series: dict[str, WholeSeries] = {}
        self.levels: dict[str, tuple[WholeSeries, WholeSeries]] = {}  # channel: peak, rms
        self.strip: list[tuple[MediaTime, bytes]] = []
        self._strip_spacing_s = THUMBNAIL_EVERY_S
        self._recent: deque[tuple[MediaTime, bytes]] = deque(maxlen=RECENT_PICTURES)
        self._waiting: list[Incident] = []
        self._pictures: dict[int, tuple[MediaTime, bytes]] = {}  # by id(incident)
        self._meter: AudioMeter | None = None

    def signal(self, name: str, time: MediaTime, value: float) -> None:
        series = self.series.get(name)
        if series is None:
            series = self.series[name] = WholeSeries(self.points)
        series.add(time, value)

    def begin(self, info: StreamInfo) -> None:
        if info.audio is not None and info.audio.channels:
            self._meter = AudioMeter(info.audio.channel_names)

    def audio(self, block: AudioBlock) -> None:
        """Each channel's peak and RMS, a tenth of a second at a time."""
        if self._meter is None:
            return
        step = max(1, round(LEVELS_EVERY_S * block.sample_rate))
        for start in range(0, block.samples.shape[1], step):
            part = block.samples[:, start : start + step]
            self._meter.add(
                AudioBlock(block.time + start / block.sample_rate, part, block.sample_rate)
            )
            levels = self._meter.read()
            if levels is not None:
                self.add_levels(levels)

    def add_levels(self, levels: Levels) -> None:
        for name, peak, rms in zip(levels.channels, levels.peak_dbfs, levels.rms_dbfs, strict=True):
            pair = self.levels.get(name)
            if pair is None:
                pair = self.levels[name] = (WholeSeries(self.points), WholeSeries(self.points))
            pair[0].add(levels.time, peak)
            pair[1].add(levels.time, rms)

    def picture(self, time: MediaTime, jpeg: bytes) -> None:
        self._recent.append((time, jpeg))
        if not self.strip or time - self.strip[-1][0] >= self._strip_spacing_s:
            self.strip.append((time, jpeg))
            if len(self.strip) > 2 * STRIP_PICTURES:
                self.strip = self.strip[::2]
                self._strip_spacing_s *= 2
        self._place(final=False)

    def opened(self, incident: Incident) -> None:
        """An incident opened (or opened again after a short gap)."""
        if id(incident) not in self._pictures and len(self._pictures) < MAX_INCIDENT_PICTURES:
            self._waiting.append(incident)
            self._place(final=False)

    def finish(self) -> None:
        self._place(final=True)

    def picture_of(self, incident: Incident) -> tuple[MediaTime, bytes] | None:
        return self._pictures.get(id(incident))

    def _place(self, *, final: bool) -> None:
        """The picture nearest an incident's start, once one at or after it has come
        (at the end, whatever is kept)."""
        still = []
        for incident in self._waiting:
            if not self._recent or (self._recent[-1][0] < incident.start and not final):
                still.append(incident)
                continue
            self._pictures[id(incident)] = min(
                self._recent, key=lambda picture: abs(picture[0] - incident.start)
            )
        self._waiting = still
