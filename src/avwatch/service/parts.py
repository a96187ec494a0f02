"""A stream split by detector group (``split:``): its parts and their keys.

Each part is a monitor of its own, on a worker of its own where one is free: it
decodes the stream itself and runs its detectors, so that heavy detectors get their
own CPUs (their own nodes, on Ray) without pictures crossing the network. Its
incidents join the stream's. The first part also watches the input (input_loss),
raises the transport stream's TR 101 290 incidents and reports the stream's status,
thumbnail and meters; detectors named in no group run there.

A part's key on the workers is the stream id for the first part and ``id#N`` for
part N (stream ids cannot hold ``#``).
"""

from __future__ import annotations

from avwatch.detectors.base import available_detectors
from avwatch.service.config import StreamSpec

__all__ = ["detector_parts", "part_key", "split_key"]


def part_key(stream: str, part: int) -> str:
    return stream if part == 0 else f"{stream}#{part}"


def split_key(key: str) -> tuple[str, int]:
    """A worker key's stream and part."""
    stream, _, part = key.partition("#")
    return stream, int(part or 0)


def detector_parts(spec: StreamSpec) -> list[list[str] | None]:
    """Each part's detector keys (one part running every detector: ``[None]``)."""
    if not spec.split:
        return [None]
    named = {key for group in spec.split for key in group}
    rest = [key for key in available_detectors() if key not in named]
    return [[*spec.split[0], *rest], *spec.split[1:]]
