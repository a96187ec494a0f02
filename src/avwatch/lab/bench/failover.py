"""``avwatch bench failover``: how long a Ray node's streams are blind when the node
dies or freezes.

A head (no CPU: the service runs there) and two nodes of a local Ray cluster
(``ray.cluster_utils.Cluster``), one looping stream per worker actor. One node is
then lost, either as a machine that dies (its processes killed) or as one that
freezes (its processes stopped with SIGSTOP: a hung kernel, a swapped-out machine,
a network partition); the time is from then until every stream it ran reports
``ok`` again from a surviving node.

What decides it: Ray's node health checks (GCS ``health_check_period_ms`` times
``health_check_failure_threshold``), which end a dead node's actors; and the pool's
own watchdog, which replaces an actor that has said nothing for ``hung_after_s``
(a frozen node's actors fall silent at once, long before Ray gives up on the node).
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from avwatch.errors import ConfigError
from avwatch.lab.bench.ray_backend import sample_processes
from avwatch.lab.synth import ClipSpec, make_clip

__all__ = ["PRODUCTION_HEALTH_CHECKS", "FailoverResult", "bench_failover"]

# What the README tells to set on a production head (ray start --system-config): a
# dead node is found in about 3 s; a busy node that answers within 1 s stays alive.
PRODUCTION_HEALTH_CHECKS = {
    "health_check_period_ms": 1000,
    "health_check_failure_threshold": 3,
    "health_check_timeout_ms": 1000,
}

Loss = Literal["dies", "freezes"]


@dataclass(frozen=True)
class FailoverResult:
    loss: Loss
    streams_lost: int
    recovery_s: float
    """From the loss until every stream of the lost node reports ok from another."""
    health_checks: dict[str, int]
    hung_after_s: float
    head_ray_rss_mb: float = 0.0
    """Ray's own processes on the head (GCS, raylet, agents, monitors)."""
    node_ray_rss_mb: float = 0.0
    """Ray's own processes on the lost node while it ran its streams (not the actors)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _descendants(root: int) -> list[int]:
    """``root`` and every process under it."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(stat[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def bench_failover(
    loss: Loss,
    *,
    streams_per_node: int = 2,
    health_checks: dict[str, int] | None = None,
    hung_after_s: float = 5.0,
    timeout_s: float = 180.0,
) -> FailoverResult:
    try:
        from ray import cluster_utils
    except ImportError as exc:
        raise ConfigError(f"bench failover needs Ray ({exc}): pip install 'avwatch[ray]'") from None
    from avwatch.service.config import ClusterSpec, ServiceConfig, StreamSpec
    from avwatch.service.core import Service

    checks = health_checks or PRODUCTION_HEALTH_CHECKS
    work = Path(tempfile.mkdtemp(prefix="avwatch-failover-"))
    clip = work / "loop.ts"
    make_clip(clip, ClipSpec(duration_s=6.0, width=320, height=180))
    cluster = cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False, "_system_config": checks},
    )
    # Room on each node for the other's actors: what a cluster needs to survive a loss.
    nodes = [cluster.add_node(num_cpus=2 * streams_per_node) for _ in range(2)]
    cluster.wait_for_nodes()
    streams = 2 * streams_per_node
    config = ServiceConfig(
        database=f"sqlite:///{work / 'failover.db'}",
        workers=streams,
        cluster=ClusterSpec(
            backend="ray",
            address=cluster.address,
            namespace="failover",
            hung_after_s=hung_after_s,
        ),
        streams=[StreamSpec(id=f"s{i}", url=str(clip), loop=True) for i in range(streams)],
    )
    service = Service(config)
    service.start()
    frozen: list[int] = []
    try:
        began = time.time()
        _wait(lambda: all(_ok_since(service, f"s{i}", began) for i in range(streams)), timeout_s)
        victim = nodes[0]
        lost = sorted(
            key for w in service.workers() if w["node"] == victim.node_id for key in w["streams"]
        )
        if not lost:
            raise RuntimeError("no stream ran on the first node")
        actors = {w["pid"] for w in service.workers()}
        head_rss, node_rss = (_ray_rss_mb(n, actors) for n in (cluster.head_node, victim))
        raylet = victim.all_processes["raylet"][0].process.pid
        at = time.time()
        if loss == "dies":
            cluster.remove_node(victim, allow_graceful=False)
        else:
            frozen = _descendants(raylet)
            for pid in frozen:
                os.kill(pid, signal.SIGSTOP)
        _wait(lambda: all(_ok_since(service, s, at + 0.5) for s in lost), timeout_s)
        recovery = time.time() - at
    finally:
        service.stop()
        for pid in frozen:  # let them go, to be ended with the cluster
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        cluster.shutdown()  # type: ignore[no-untyped-call]
    return FailoverResult(
        loss,
        len(lost),
        round(recovery, 1),
        dict(checks),
        hung_after_s,
        round(head_rss, 1),
        round(node_rss, 1),
    )


def _ray_rss_mb(node: Any, actors: set[int]) -> float:
    """Resident memory of a Ray node's own processes and what they started, less the
    worker actors."""
    pids = {
        pid
        for infos in node.all_processes.values()
        for info in infos
        for pid in _descendants(info.process.pid)
    }
    return sample_processes(sorted(pids - actors))[1]


def _ok_since(service: Any, stream: str, since: float) -> bool:
    status = service.status(stream)
    return bool(status.get("state") == "ok" and status.get("at", 0) > since)


def _wait(done: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not recovered within {timeout_s:g} s")
        time.sleep(0.1)
