"""Capacity on demand with Ray's own autoscaler, on one machine: its fake multi-node
provider starts a real Ray node (processes here) for each node it "launches".

``ray.cluster_utils.AutoscalingCluster`` cannot be used: in the 2.60 wheel it reads
``autoscaler/_private/fake_multi_node/example.yaml``, which the wheel does not ship.
The head is started here as it does, with the cluster's config written out in full.

It must be the first test of its process to use Ray: after a ray.init and
ray.shutdown in the same process, the actor a reconnected driver creates for a
pending stream is cancelled before it is placed (Ray 2.60). Its folder sorts it
before every other Ray test, with or without xdist (the Ray tests are one group).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servicekit import wait_for

from avwatch.lab.synth import ClipSpec, make_clip
from avwatch.service.config import ClusterSpec, ServiceConfig, StreamSpec
from avwatch.service.core import Service

ray = pytest.importorskip("ray")
RayConfig = pytest.importorskip("ray._raylet").Config
# One process runs every test that starts Ray: they share the machine's Ray.
pytestmark = pytest.mark.xdist_group("ray")

SITE_A = "ray.worker.site_a"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _autoscaling_config(gcs: str) -> dict[str, Any]:
    """A head with no CPU, and nodes of one CPU at site A that the autoscaler may add."""
    return {
        "cluster_name": "avwatch-autoscaling",
        "max_workers": 2,
        "provider": {
            "type": "fake_multinode",
            "gcs_address": gcs,
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            SITE_A: {
                "resources": {"CPU": 1, "site_a": 1},
                "node_config": {},
                "min_workers": 0,
                "max_workers": 2,
            },
        },
        "head_node_type": "ray.head.default",
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 0.05,  # an idle node goes after 3 s
        **{key: {} for key in ("auth", "docker", "file_mounts")},
        **{
            key: []
            for key in (
                "initialization_commands",
                "setup_commands",
                "head_setup_commands",
                "worker_setup_commands",
                "head_start_ray_commands",
                "worker_start_ray_commands",
                "cluster_synced_files",
                "rsync_exclude",
                "rsync_filter",
            )
        },
        "file_mounts_sync_continuously": False,
    }


@pytest.fixture()
def autoscaling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The address of a head whose autoscaler adds and removes nodes on this machine."""
    ray_cli = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    gcs = f"{ray.util.get_node_ip_address()}:{port}"  # as the nodes it adds will find it
    config = tmp_path / "autoscaling.json"
    config.write_text(json.dumps(_autoscaling_config(gcs)))
    # Token auth off, for the head and for this process alike: `ray start` would turn
    # it on, and an earlier ray.init here may have (it sets RAY_AUTH_MODE for this
    # process); a driver and a cluster that disagree lose their actors.
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    RayConfig.initialize("")  # Ray reads its settings once; as Ray itself does on a change
    env = {**os.environ, "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1"}
    start = [
        ray_cli,
        "start",
        "--head",
        "--num-cpus=0",
        f"--port={port}",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--autoscaling-config={config}",
    ]
    subprocess.run(start, env=env, check=True, capture_output=True, timeout=120)
    try:
        yield gcs
    finally:
        if ray.is_initialized():
            ray.shutdown()
        _stop_cluster(port)
        # As `ray stop` does: a plain ray.init() would otherwise take this dead head
        # for the machine's cluster (`ray start` wrote it there).
        if ray._private.utils.read_ray_address() == gcs:
            ray._common.utils.reset_ray_address()
        monkeypatch.undo()
        RayConfig.initialize("")


def _stop_cluster(port: int, timeout_s: float = 60.0) -> None:
    """Kill the processes of the cluster whose GCS listens on ``port`` (its GCS, the
    head's and the added nodes' raylets and agents; their workers follow their raylet).

    Not `ray stop --force`: that ends every Ray process on the machine, another Ray
    test's too if one runs beside this (under pytest 9.2 xdist's groups were split),
    and Ray ends a driver whose raylet dies, its pytest worker with it."""
    ours = {f"--gcs_server_port={port}"}
    ours |= {f"{flag}={host}:{port}" for flag in ("--gcs-address", "--address")
             for host in (ray.util.get_node_ip_address(), "127.0.0.1")}  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = [pid for pid, args in _processes() if ours & set(args)]
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError):  # gone meanwhile
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
    raise AssertionError(f"processes of the cluster on port {port} outlived {timeout_s:g} s")


def _processes() -> list[tuple[int, list[str]]]:
    """(pid, arguments) of every process but this one, from /proc."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        pid = int(entry.parent.name)
        try:
            args = entry.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # gone meanwhile
        if pid != os.getpid():
            found.append((pid, args))
    return found


def _site_a_nodes() -> list[str]:
    return [
        n["NodeID"]
        for n in ray.nodes()
        if n["Alive"] and n["Resources"].get("site_a")  # type: ignore[no-untyped-call]
    ]


def test_the_autoscaler_adds_a_node_for_a_pending_stream_and_removes_it_when_idle(
    tmp_path, autoscaling
):
    clip = tmp_path / "loop.ts"
    make_clip(clip, ClipSpec(duration_s=4.0, width=320, height=180))
    placed = StreamSpec(
        id="site-a", url=str(clip), loop=True, placement={"resources": {"site_a": 1}}
    )
    config = ServiceConfig(
        database=f"sqlite:///{tmp_path / 'autoscaling.db'}",
        cluster=ClusterSpec(backend="ray", address=autoscaling, idle_after_s=2),
        streams=[placed],
    )
    service = Service(config)
    service.start()
    try:
        began = time.time()
        # No node of site A: the stream's actor waits for one, and is the demand.
        assert _site_a_nodes() == []
        (waiting,) = service.workers()
        assert waiting["state"] == "pending" and waiting["streams"] == ["site-a"]
        wait_for(
            "the stream running on a node the autoscaler added",
            lambda: (
                service.status("site-a").get("state") == "ok"
                and service.status("site-a").get("at", 0) > began
            ),
            90,
        )
        (holder,) = [w for w in service.workers() if w["resources"]]
        assert holder["node"] in _site_a_nodes()
        print(f"site A's node added and the stream ok {time.time() - began:.1f} s after start")

        service.delete_stream("site-a")
        removed = time.time()
        wait_for("the idle actor given back", lambda: not service.workers(), 30)
        wait_for("its node removed by the autoscaler", lambda: _site_a_nodes() == [], 60)
        print(f"site A's node removed {time.time() - removed:.1f} s after its stream")
    finally:
        service.stop()
