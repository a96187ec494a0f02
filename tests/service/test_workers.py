"""Worker processes pinned to CPUs: real processes, their affinity read back from the OS."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from servicekit import wait_for

from avwatch.service.workers import WorkerPool

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="pinning needs Linux and two CPUs",
)


def _affinities(pool: WorkerPool) -> list[set[int]]:
    """Each worker's CPUs, once every worker has started (and pinned itself)."""

    def settled() -> list[set[int]] | None:
        pids = [w["pid"] for w in pool.describe()]
        found = [os.sched_getaffinity(pid) for pid in pids]
        # A worker pins itself as it starts: until then it has its parent's CPUs.
        return found if all(len(cpus) == 1 for cpus in found) else None

    return wait_for("every worker to pin itself", settled, 20)


@pytest.fixture
def two_cpus() -> Iterator[list[int]]:
    """This process limited to two of its CPUs (the pool pins within what it may use),
    so that a big machine does not start a worker per CPU."""
    before = os.sched_getaffinity(0)
    cpus = sorted(before)[:2]
    os.sched_setaffinity(0, cpus)
    try:
        yield cpus
    finally:
        os.sched_setaffinity(0, before)


def test_a_worker_per_cpu_is_pinned_one_to_each(two_cpus: list[int]):
    pool = WorkerPool(3, lambda message: None, pin=True)
    pool.start()
    try:
        # Round robin: the third worker shares the first one's CPU.
        expected = [two_cpus[0], two_cpus[1], two_cpus[0]]
        assert _affinities(pool) == [{cpu} for cpu in expected]
        assert [w["cpu"] for w in pool.describe()] == expected
    finally:
        pool.stop()


def test_fewer_workers_than_cpus_are_not_pinned(two_cpus: list[int]):
    # One worker pinned to one of two CPUs would leave the other idle.
    pool = WorkerPool(1, lambda message: None, pin=True)
    pool.start()
    try:
        assert pool.describe()[0]["cpu"] is None
        pid = pool.describe()[0]["pid"]
        assert os.sched_getaffinity(pid) == set(two_cpus)
    finally:
        pool.stop()
