"""Configuration: pydantic models, the YAML loader, and the one place where
global detector settings merge into a stream's overrides.

A config file looks like::

    analysis_width: 320
    detectors:                 # per-detector options, see `avwatch detectors`
      black: {min_duration_s: 0.5}
      loudness: {preset: atsc_a85}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from avwatch.detectors.base import Detector, DetectorConfig, available_detectors
from avwatch.errors import ConfigError
from avwatch.types import STRICT_ERROR_DETECTION, Analysis, ErrorDetection, Profile

__all__ = [
    "EngineConfig",
    "Escalation",
    "check_detector_options",
    "detector_config",
    "explain",
    "load_model",
    "merge_overrides",
    "read_yaml_mapping",
    "validated",
]

ModelT = TypeVar("ModelT", bound=BaseModel)


class Expect(BaseModel):
    """What the programme must carry (``expect:``): a stream that does not is an
    incident, from the start."""

    model_config = ConfigDict(extra="forbid")

    captions: bool | None = Field(
        None, description="Caption data (CEA-608/708) in the pictures: captions_missing if none."
    )
    audio_tracks: int | None = Field(
        None, ge=0, le=64, description="Audio tracks in the PMT: track_missing if fewer."
    )
    languages: list[str] | None = Field(
        None, description="ISO 639 codes of the audio tracks: language_changed if not these."
    )
    service_name: str | None = Field(
        None, description="The SDT's service name: service_changed if not this."
    )


class Escalation(BaseModel):
    """When a patrolled stream is analysed in full (``analysis: patrol``)."""

    model_config = ConfigDict(extra="forbid")

    escalate_s: float = Field(
        60.0,
        ge=0.0,
        le=3600.0,
        description="A sign of trouble (an incident, a transport error, a black or unchanged "
        "keyframe, silence starting) brings full analysis from the next keyframe for this "
        "long after it (0: never).",
    )
    rotate_every_s: float = Field(
        300.0,
        ge=0.0,
        le=86400.0,
        description="Every this long each patrolled stream gets a full-analysis slice, so "
        "that lip sync and picture damage are sampled on every stream (0: no rotation).",
    )
    rotate_for_s: float = Field(10.0, ge=0.0, le=600.0, description="How long a slice lasts.")
    full_slots: int = Field(
        2,
        ge=0,
        le=1000,
        description="Patrolled streams one worker analyses in full at once (escalations and "
        "slices); one that finds none free stays in patrol.",
    )


class EngineConfig(BaseModel):
    """Settings of the engine that every stream shares."""

    model_config = ConfigDict(extra="forbid")

    analysis_width: int = Field(
        320,
        ge=64,
        le=1920,
        description="Largest width of the grey analysis picture (pixels); the source is "
        "shrunk by a whole factor to fit.",
    )
    analysis_interpolation: Literal["area", "bilinear", "fast_bilinear", "point"] = Field(
        "fast_bilinear",
        description="libswscale filter that makes the analysis picture. 'area' averages "
        "every source pixel but reads all of them: at 1080p it costs a good part of the "
        "decode itself in memory traffic.",
    )
    decoder_threads: int = Field(
        0,
        ge=0,
        le=64,
        description="Video decoder threads per stream (0: one per core). A service running "
        "many streams per core wants 1: parallelism then comes from the streams.",
    )
    decoder_error_detection: ErrorDetection = Field(
        STRICT_ERROR_DETECTION,
        description="How strictly the video decoder checks what it decodes (FFmpeg's "
        "err_detect). 'aggressive' also rejects a slice that decodes but leaves data unread, "
        "as bit errors that still parse as valid syntax do: damage that 'default' (FFmpeg's "
        "own) lets through unreported. A slice a sane encoder would not write counts too.",
    )
    analysis: Analysis = Field(
        "full",
        description="Which pictures are decoded: 'full' every one; 'fast' every one without "
        "the decoder's deblocking; 'patrol' keyframes only (black, freeze and video loss at "
        "the keyframe spacing, lip sync not judged; audio and transport in full), escalated "
        "to full on a sign of trouble.",
    )
    escalation: Escalation = Field(default_factory=Escalation)
    profile: Profile = Field(
        "live",
        description="Operating point: 'live' (alarms for 24/7 monitoring) or 'qc' (file "
        "QC: single-frame black, freezes from 0.3 s, silences from 0.1 s, loudness drifts "
        "from 3 s). Options set under 'detectors' win over the profile's.",
    )
    open_timeout_s: float = Field(10.0, gt=0, le=300, description="Time allowed to open a source.")
    read_timeout_s: float = Field(10.0, gt=0, le=300, description="Time allowed for one read.")
    merge_gap_s: float = Field(
        0.5,
        ge=0.0,
        le=60.0,
        description="Incidents of one type at most this far apart merge into one.",
    )
    detectors: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Options per detector key."
    )
    expect: Expect = Field(default_factory=Expect)


# A config is a few kilobytes. These bounds turn hostile or broken files (a YAML alias
# bomb, thousands of nested brackets) into one clear line instead of memory or a crash.
MAX_CONFIG_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_VALUES = 100_000  # values in the document once every alias is expanded


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses nesting deeper than MAX_DEPTH while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ConfigError(f"nested more than {MAX_DEPTH} deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (an empty file is an empty one). Any
    bytes give a mapping or one line of ConfigError that says what is wrong."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: over {MAX_CONFIG_BYTES} bytes; not a config file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        raw = yaml.load(text, Loader=_BoundedLoader)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"
        raise ConfigError(f"{path}: not valid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    if _expanded_size(raw, MAX_VALUES) > MAX_VALUES:
        raise ConfigError(f"{path}: over {MAX_VALUES} values once its aliases are expanded")
    return raw


def _expanded_size(value: Any, budget: int) -> int:
    """How many values ``value`` holds with shared parts counted each time they appear;
    stops counting past ``budget``, so an alias bomb costs no more than that."""
    count, stack = 0, [value]
    while stack and count <= budget:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def validated(model: type[ModelT], raw: Any, where: str | None = None) -> ModelT:
    """``raw`` as ``model``, or a ConfigError naming every bad field (after ``where``)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(explain(exc) if where is None else f"{where}: {explain(exc)}") from exc


def load_model(model: type[ModelT], path: str | Path | None) -> ModelT:
    """A YAML file read as ``model`` (no file: all defaults): the engine's config for
    ``check``, the service's for ``serve``."""
    if path is None:
        return model()
    return validated(model, read_yaml_mapping(path), str(path))


def merge_overrides(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` onto ``base``: the only place global settings meet a stream's."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_overrides(merged[key], value)
        else:
            merged[key] = value
    return merged


def detector_config(cls: type[Detector[Any]], options: dict[str, Any] | None) -> DetectorConfig:
    """Validate one detector's options into its config model."""
    return validated(cls.Config, options or {}, f"detector {cls.key!r}")


def detector_options(config: EngineConfig, cls: type[Detector[Any]]) -> dict[str, Any]:
    """A detector's options in ``config``: its profile's, its own over them, and what
    ``expect:`` says that it judges (``Detector.expect_options``)."""
    options = {**cls.profiles.get(config.profile, {}), **(config.detectors.get(cls.key) or {})}
    for field, option in cls.expect_options.items():
        value = getattr(config.expect, field)
        if value is not None:
            options[option] = value
    return options


def check_detector_options(config: EngineConfig) -> None:
    """Fail now, with the reason, on an unknown detector or a bad option (not when a
    stream first connects)."""
    known = available_detectors()
    unknown = set(config.detectors) - set(known)
    if unknown:
        raise ConfigError(f"unknown detectors: {', '.join(sorted(unknown))}")
    for key in config.detectors:
        detector_config(known[key], detector_options(config, known[key]))


def explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
