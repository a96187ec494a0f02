"""Files the lab writes into caches that other processes may be filling at once (two
test workers, two benches): each writes under a name of its own, then renames."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["partial_path"]


def partial_path(path: Path) -> Path:
    """Where this process writes ``path`` before renaming it into place. The suffix
    stays last: muxers choose the format by it."""
    return path.with_name(f"{path.stem}.{os.getpid()}.part{path.suffix}")
