"""Defect detectors: one module each, registered through the ``avwatch.detectors`` entry points."""

from avwatch.detectors.base import Detector, DetectorConfig, RunTracker, available_detectors

__all__ = ["Detector", "DetectorConfig", "RunTracker", "available_detectors"]
