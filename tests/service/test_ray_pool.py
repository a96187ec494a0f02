"""The service on a local multi-node Ray cluster (a head and two nodes on this machine):
streams spread over the nodes, a node lost while they run and its streams back on the
other, a new head finding the actors of the last one."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servicekit import black_update, wait_for
from sqlalchemy import select

from avwatch.config import EngineConfig
from avwatch.lab.synth import ClipSpec, Defect, make_clip
from avwatch.service.api import nodes_of
from avwatch.service.config import ClusterSpec, ServiceConfig, StreamSpec
from avwatch.service.core import Service
from avwatch.service.messages import StatusReport
from avwatch.service.store import IncidentRow

ray = pytest.importorskip("ray")
# One process runs every test that starts Ray: they share the machine's Ray.
pytestmark = pytest.mark.xdist_group("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

# Found dead after about two missed health checks of 0.5 s (defaults: 3 s and 5).
HEALTH_CHECKS = {
    "health_check_period_ms": 500,
    "health_check_failure_threshold": 2,
    "health_check_timeout_ms": 500,
}


def start_cluster() -> Any:
    made = cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,  # the head runs the service, no workers
            "include_dashboard": False,
            "_system_config": HEALTH_CHECKS,
        },
    )
    try:
        for _ in range(2):
            made.add_node(num_cpus=2)
        made.wait_for_nodes()
    except BaseException:
        made.shutdown()
        raise
    return made


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from avwatch.service.ray_pool import NAMESPACE, join

    try:
        made = start_cluster()
    except Exception as exc:
        # Ray gives a raylet a fixed 30 s to register, which two loaded cores can miss.
        if "timed out during startup" not in str(exc):
            raise
        made = start_cluster()
    try:
        # One driver for the module, as `avwatch serve` has one for its life: the
        # services here find it joined.
        join(made.address, NAMESPACE)
        yield made
    finally:
        if ray.is_initialized():
            ray.shutdown()
        made.shutdown()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ray") / "loop.ts"
    make_clip(
        path,
        ClipSpec(duration_s=6.0, width=320, height=180, defects=[Defect("black", 2.0, 4.0)]),
    )
    return path


def _service(tmp_path: Path, cluster: Any, clip: Path, streams: int) -> Service:
    config = ServiceConfig(
        database=f"sqlite:///{tmp_path / 'ray.db'}",
        workers=2,
        cluster=ClusterSpec(backend="ray", address=cluster.address),
        streams=[StreamSpec(id=f"s{i}", url=str(clip), loop=True) for i in range(streams)],
    )
    return Service(config)


def _ok_since(service: Service, stream: str, since: float) -> bool:
    status = service.status(stream)
    return status.get("state") == "ok" and status.get("at", 0) > since


def test_a_split_stream_runs_its_parts_on_two_nodes_and_reports_both(
    tmp_path, cluster, tmp_path_factory
):
    clip = tmp_path_factory.mktemp("split") / "split.ts"
    make_clip(
        clip,
        ClipSpec(
            duration_s=8.0,
            width=320,
            height=180,
            defects=[Defect("black", 1.0, 3.5), Defect("silence", 4.0, 7.0)],
        ),
    )
    spec = StreamSpec(
        id="split", url=str(clip), loop=True, split=[["black", "freeze"], ["silence"]]
    )
    config = ServiceConfig(
        database=f"sqlite:///{tmp_path / 'split.db'}",
        workers=2,
        cluster=ClusterSpec(backend="ray", address=cluster.address, namespace="split"),
        streams=[spec],
    )
    service = Service(config)
    service.start()
    try:
        wait_for(
            "a black and a silence on the one stream",
            lambda: _types(service) >= {("split", "black"), ("split", "silence")},
            90,
        )
        holders = {w["node"]: w["streams"] for w in service.workers() if w["streams"]}
        assert sorted(holders.values()) == [["split"], ["split#1"]]  # a part per node
        # /healthz's nodes and /metrics' gauges say so.
        assert sorted(n["streams"] for n in nodes_of(service.workers())) == [1, 1]
        service.metrics.workers_seen(service.workers())
        metrics = service.metrics.render().decode()
        assert "avwatch_nodes 2.0" in metrics
        assert 'avwatch_workers{state="running"} 2.0' in metrics
        wait_for("the second part's status", lambda: "parts" in service.status("split"), 10)
        assert service.status("split")["parts"]["1"]["state"] == "ok"
    finally:
        service.stop()
    rows = _rows(service)
    by_type = {r.type: r for r in rows}
    assert by_type["black"].details.get("part") is None  # from the first part
    assert by_type["silence"].details["part"] == 1
    assert {r.type for r in rows} <= {"black", "silence", "freeze"}  # each found once


def test_streams_spread_over_nodes_and_come_back_when_a_node_is_lost(tmp_path, cluster, clip):
    service = _service(tmp_path, cluster, clip, streams=2)
    service.start()
    try:
        began = time.time()
        wait_for(
            "both streams running",
            lambda: all(_ok_since(service, s, began) for s in ("s0", "s1")),
            90,
        )
        workers = service.workers()
        nodes = {w["node"] for w in workers}
        assert len(nodes) == 2 and all(len(w["streams"]) == 1 for w in workers)
        wait_for(
            "a black on each stream",
            lambda: _types(service) >= {("s0", "black"), ("s1", "black")},
            30,
        )

        # The node that runs s0 is lost, as a machine that dies would be.
        lost = next(w for w in workers if w["streams"] == ["s0"])
        pool: Any = service.pool
        stale = next(a.incarnation for a in pool._actors if a.index == lost["index"])
        node = next(n for n in cluster.worker_nodes if n.node_id == lost["node"])
        cluster.remove_node(node, allow_graceful=False)
        gone = time.time()
        wait_for("s0 back on the other node", lambda: _ok_since(service, "s0", gone + 1), 60)
        recovery_s = time.time() - gone
        print(f"s0 delivering again {recovery_s:.1f} s after its node was lost")
        replaced = next(w for w in service.workers() if "s0" in w["streams"])
        assert replaced["restarts"] == 1 and replaced["node"] != lost["node"]
        # What the lost actor still held is dropped; its replacement's is taken.
        fresh = next(a.incarnation for a in pool._actors if a.index == lost["index"])
        for incarnation, incident in ((stale, "from-lost"), (fresh, "from-fresh")):
            update = dataclasses.replace(black_update(incident, open_=False), stream="s0")
            pool._deliver(incarnation, [update])
        # The inbox hands messages on in order: once the fresh one is in, the lost one was refused.
        wait_for("the fresh actor's incident", lambda: "from-fresh" in _ids(service), 10)
        assert "from-lost" not in _ids(service)
        # A defect of the loop after the recovery is found there.
        wait_for(
            "a black on s0 after the loss",
            lambda: any(
                r.stream == "s0" and r.type == "black" and r.started_at.timestamp() > gone
                for r in _rows(service)
            ),
            30,
        )
    finally:
        service.stop()
    rows = _rows(service)
    keys = [(r.stream, r.type, r.key, r.started_at) for r in rows]
    assert len(keys) == len(set(keys))  # nothing stored twice
    closed = [r for r in rows if r.details.get("closed_by", "").startswith("worker")]
    assert all(r.stream == "s0" for r in closed)  # only the lost node's incidents were cut


def test_a_new_head_finds_the_actors_and_their_streams_running(cluster, clip):
    from avwatch.service.ray_pool import RayPool

    spec = StreamSpec(id="kept", url=str(clip), loop=True).model_dump(mode="json")
    engine = EngineConfig().model_dump(mode="json")
    heard: list[Any] = []
    first = RayPool(2, heard.append, address=cluster.address, namespace="reclaim")
    first.start()
    first.assign("kept", spec, engine)
    wait_for("the stream's status", lambda: any(isinstance(m, StatusReport) for m in heard), 60)
    # The head dies without stopping its actors (they are detached).
    first._stop.set()
    second_heard: list[Any] = []
    second = RayPool(2, second_heard.append, address=cluster.address, namespace="reclaim")
    second.start()
    try:
        assert second.reclaimed == 2
        (holder,) = [a for a in second._actors if list(a.streams) == ["kept"]]
        since = ray.get(holder.handle.running_since.remote())
        second.assign("kept", spec, engine)  # handed out again: the same settings, kept running
        wait_for(
            "status at the new head",
            lambda: any(isinstance(m, StatusReport) for m in second_heard),
            30,
        )
        assert ray.get(holder.handle.running_since.remote()) == since  # not started again
    finally:
        second.stop()


def _rows(service: Service) -> list[IncidentRow]:
    assert service.store is not None
    with service.store.session() as s:
        return list(s.scalars(select(IncidentRow)))


def _ids(service: Service) -> set[str]:
    return {r.id for r in _rows(service)}


def _types(service: Service) -> set[tuple[str, str]]:
    return {(r.stream, r.type) for r in _rows(service)}


def test_a_stream_placed_by_resources_waits_pending_until_a_node_has_them(tmp_path, cluster, clip):
    placed = StreamSpec(
        id="site-a", url=str(clip), loop=True, placement={"resources": {"site_a": 1}}
    )
    config = ServiceConfig(
        database=f"sqlite:///{tmp_path / 'placed.db'}",
        workers=1,
        cluster=ClusterSpec(backend="ray", address=cluster.address, namespace="placed"),
        streams=[placed],
    )
    service = Service(config)
    service.start()
    try:
        wait_for("the stream pending", lambda: service.status("site-a")["state"] == "pending", 30)
        (waiting,) = [w for w in service.workers() if w["resources"]]
        assert waiting["state"] == "pending" and waiting["streams"] == ["site-a"]
        # Capacity arrives, as Ray's autoscaler would add it: a node of site A.
        node = cluster.add_node(num_cpus=1, resources={"site_a": 1})
        began = time.time()
        wait_for("the stream running", lambda: _ok_since(service, "site-a", began), 60)
        (holder,) = [w for w in service.workers() if w["resources"]]
        assert holder["state"] == "running" and holder["node"] == node.node_id
    finally:
        service.stop()
