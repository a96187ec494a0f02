"""avwatch: an audio/video quality monitor that decodes once and detects in memory."""

import os

# One BLAS thread, set before numpy loads OpenBLAS. Parallelism comes from the
# decoder's threads and from one stream per core; a worker OpenBLAS wakes for a
# matrix product (true peak's interpolation) busy-waits beside them for the next
# one. A value the user set stays.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from avwatch.types import DefectEvent, Incident, Severity, StreamInfo

__version__ = "0.1.0"

__all__ = ["DefectEvent", "Incident", "Severity", "StreamInfo", "__version__"]
