"""avwatch: an audio/video quality monitor that decodes once and detects in memory."""

from avwatch.types import DefectEvent, Incident, Severity, StreamInfo

__version__ = "0.1.0"

__all__ = ["DefectEvent", "Incident", "Severity", "StreamInfo", "__version__"]
