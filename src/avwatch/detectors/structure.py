"""The programme's shape, as its tables say, held against ``expect:``.

The transport analyser hands on each new or changed PMT (``programme``: its
elementary streams with kind and ISO 639 language) and SDT (``service``: the
service names). This detector reports:

- ``track_missing`` while fewer audio tracks are listed than ``audio_tracks``;
- ``language_changed`` while the audio languages are not ``languages``;
- ``service_changed`` while no service is named ``service_name``;
- ``pmt_changed`` (info), without those expectations, each time the PMT changes
  what it lists: a track added or removed, a PID moved, a language changed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from avwatch.detectors.base import Detector, DetectorConfig
from avwatch.types import MediaTime, Severity, StreamInfo, TransportFinding

__all__ = ["StructureConfig", "StructureDetector"]


class StructureConfig(DetectorConfig):
    audio_tracks: int | None = Field(
        None, ge=0, le=64, description="Audio tracks the PMT must list (expect.audio_tracks)."
    )
    languages: list[str] | None = Field(
        None,
        description="ISO 639 codes of the audio tracks, in any order (expect.languages).",
    )
    service_name: str | None = Field(
        None, description="The SDT's service name (expect.service_name)."
    )


class StructureDetector(Detector[StructureConfig]):
    key = "structure"
    needs = frozenset()
    emits = ("track_missing", "language_changed", "service_changed", "pmt_changed")
    Config = StructureConfig
    description = "Audio tracks, languages and service name against expect:; PMT changes."
    expect_options: ClassVar[dict[str, str]] = {
        "audio_tracks": "audio_tracks",
        "languages": "languages",
        "service_name": "service_name",
    }

    def __init__(self, config: StructureConfig, info: StreamInfo) -> None:
        super().__init__(config, info)
        self.open: dict[str, MediaTime] = {}  # incident type -> since
        self.streams: list[dict[str, Any]] = []
        self.services: list[dict[str, Any]] = []
        self.changes = 0

    def on_transport(self, finding: TransportFinding) -> None:
        if finding.type == "programme":
            self._programme(finding)
        elif finding.type == "service":
            self.services = list(finding.details.get("services") or [])
            wanted = self.config.service_name
            if wanted is not None:
                names = [s.get("name") for s in self.services]
                self._hold("service_changed", wanted not in names, finding.time, names=names)

    def _programme(self, finding: TransportFinding) -> None:
        self.streams = list(finding.details.get("streams") or [])
        before = finding.details.get("before")
        audio = [s for s in self.streams if s["kind"] == "audio"]
        languages = sorted(s["language"] or "und" for s in audio)
        if self.config.audio_tracks is not None:
            missing = len(audio) < self.config.audio_tracks
            self._hold("track_missing", missing, finding.time, audio_tracks=len(audio))
        if self.config.languages is not None:
            wanted = sorted(code.lower() for code in self.config.languages)
            self._hold("language_changed", languages != wanted, finding.time, languages=languages)
        if before is not None and _listed(before) != _listed(self.streams):
            self.changes += 1
            old, new = {_named(s) for s in before}, {_named(s) for s in self.streams}
            removed, added = sorted(old - new), sorted(new - old)
            for phase in ("start", "end"):
                self.emit(
                    "pmt_changed", phase, finding.time, Severity.INFO, removed=removed, added=added
                )

    def _hold(self, type_: str, wrong: bool, at: MediaTime, **details: Any) -> None:
        """Open ``type_`` when the programme turns wrong, close it when it is right."""
        if wrong and type_ not in self.open:
            self.open[type_] = at
            self.emit(type_, "start", at, Severity.ERROR, **details)
        elif not wrong and type_ in self.open:
            del self.open[type_]
            self.emit(type_, "end", at, Severity.ERROR, **details)

    def flush(self, end: MediaTime) -> None:
        for type_ in self.open:
            self.emit(type_, "end", end, Severity.ERROR)
        self.open = {}

    def summary(self) -> dict[str, Any]:
        if not (self.streams or self.services):
            return {}
        return {"streams": self.streams, "services": self.services, "pmt_changes": self.changes}

    @classmethod
    def report_lines(cls, summary: dict[str, Any]) -> list[str]:
        tracks = ", ".join(_named(s) for s in summary["streams"])
        names = ", ".join(str(s["name"]) for s in summary["services"]) or "-"
        return [f"programme: {tracks}; service {names}; {summary['pmt_changes']} PMT changes"]


def _named(stream: dict[str, Any]) -> str:
    """``audio 0x0101 (eng)``: a stream as an operator reads it."""
    language = f" ({stream['language']})" if stream["language"] else ""
    return f"{stream['kind']} {stream['pid']:#06x}{language}"


def _listed(streams: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a PMT lists, as compared for a change (its order does not matter)."""
    return sorted((s["pid"], s["stream_type"], s["language"]) for s in streams)
