"""Loudness off target: the detector and its BS.1770-4 meter (``meter``)."""

from avwatch.detectors.loudness.detector import LoudnessConfig, LoudnessDetector

__all__ = ["LoudnessConfig", "LoudnessDetector"]
