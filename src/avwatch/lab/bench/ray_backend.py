"""The bench's Ray side: a one-node Ray cluster on this machine, a pool of actors for a
trial, and what Ray's own processes cost beside them.

Ray's own processes are every process of the cluster that is not a worker actor: the
GCS server, the raylet, the agents and monitors, idle workers. Their CPU time over a
trial's measured window and their resident memory are the overhead a node pays for
Ray; the actors are the monitors' own cost, as worker processes are in ``local``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avwatch.errors import ConfigError
from avwatch.service.messages import WorkerMessage

__all__ = ["RayOverhead", "ray_cluster", "ray_pool", "ray_processes", "sample_processes"]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STARTUP_S = 120.0  # actors importing avwatch on a loaded machine


@dataclass(frozen=True)
class RayOverhead:
    """Ray's own processes on the node during a trial's measured window."""

    processes: int
    cpu_share: float
    """Their CPU seconds per second of the window (1.0: one core)."""
    rss_mb: float


def ray_cluster(cpus: int) -> Callable[[], None]:
    """Start a one-node Ray cluster here with ``cpus`` CPUs; returns its shutdown."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"--backend ray needs Ray ({exc}): pip install 'avwatch[ray]'") from None
    # "local": a cluster of its own, even where one already runs on this machine (a
    # plain ray.init() would join that one, and refuse the CPU count).
    ray.init(
        address="local",
        num_cpus=cpus,
        include_dashboard=False,
        log_to_driver=False,
        namespace="bench",
    )
    return ray.shutdown


def ray_pool(workers: int, collect: Callable[[WorkerMessage], None]) -> Any:
    """Started RayPool of ``workers`` actors, each up (heard from) before it returns."""
    from avwatch.service.ray_pool import RayPool

    pool = RayPool(workers, collect, namespace="bench", per_worker=None)
    pool.start()
    deadline = time.monotonic() + STARTUP_S
    while any(w["state"] == "pending" for w in pool.describe()):
        if time.monotonic() > deadline:
            pool.stop()
            raise ConfigError(f"Ray actors not up after {STARTUP_S:g} s")
        time.sleep(0.2)
    return pool


def ray_processes(actors: set[int]) -> list[int]:
    """Pids of this machine's Ray processes other than ``actors`` and this one."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in actors | {os.getpid()}:
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"/ray/" in command or command.startswith(b"ray::"):
            found.append(int(entry.name))
    return found


def sample_processes(pids: list[int]) -> tuple[float, float]:
    """CPU seconds so far and resident MB now, summed over ``pids`` (gone ones: 0)."""
    cpu = rss = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        cpu += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1]) / 1024
    return cpu, rss
