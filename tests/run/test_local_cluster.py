"""executor="local": this process's own LocalCluster, started once and reused.  (In a module of
its own: the only cluster of the process while it runs; tests/run/test_distributed.py keeps a
cluster of its own open over its tests.)"""

from __future__ import annotations

import os

from helpers import assert_same_partition, random_mlp

import splinecam as sc
from splinecam.run.executors import executor_scope

BOX2 = sc.Slice.box((-2, -2), (2, 2))


def run(model, sl, **options) -> sc.Partition:
    return sc.partition(model, sl, progress=False, **options)


def test_local_cluster_is_started_once():
    """executor="local": one LocalCluster per process, of single-threaded workers, reused by
    later calls until close_local_cluster()."""
    model = random_mlp([16, 16], 1, 0)
    try:
        with executor_scope("local") as c:
            assert set(c.run(os.environ.get, "OMP_NUM_THREADS").values()) == {"1"}
            workers = set(c.scheduler_info()["workers"])
        assert_same_partition(run(model, BOX2, tiles=2, executor="local"), run(model, BOX2))
        assert len(sc.partition_many(model, [BOX2], executor="local", progress=False)[0]) == len(run(model, BOX2))
        with executor_scope("local") as again:
            assert again is c and c.status == "running"
            assert set(c.scheduler_info()["workers"]) == workers  # the same worker processes
    finally:
        sc.close_local_cluster()
    assert c.status == "closed"
    sc.close_local_cluster()  # closing twice is harmless
