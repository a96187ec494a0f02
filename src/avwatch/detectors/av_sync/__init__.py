"""Audio/video offset: the detector, the offset search it runs (``correlation``)."""

from avwatch.detectors.av_sync.detector import AvSyncConfig, AvSyncDetector

__all__ = ["AvSyncConfig", "AvSyncDetector"]
