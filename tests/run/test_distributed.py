"""Tiled partitions equal untiled ones; partition_many equals the loop; executors (a real Dask
LocalCluster of worker processes, concurrent.futures) and their failure modes."""

from __future__ import annotations

import _thread
import concurrent.futures
import os
import sys
import threading
import time

import numpy as np
import pytest
import torch
from helpers import arrangement_model, examples, random_mlp
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import splinecam as sc
from splinecam.run.executors import TaskError, executor_scope, run_tasks

distributed = pytest.importorskip("distributed")
import cloudpickle  # noqa: E402  (a dependency of distributed)

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module

BOX2 = sc.Slice.box((-2, -2), (2, 2))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Many medium-sized torch ops: on this shared 2-core machine, intra-op threads only slow them down."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as c:
            yield c


def keyed(part: sc.Partition) -> dict:
    """{packed code: region index}; codes are unique."""
    keys = {np.packbits(c).tobytes(): i for i, c in enumerate(part.codes)}
    assert len(keys) == len(part)
    return keys


def assert_same_partition(tiled: sc.Partition, plain: sc.Partition) -> None:
    """Same regions by code: polygons (vertex sets up to rotation), edge units, areas, maps,
    centroid outputs, and the same decision boundary length; all to 1e-9 relative."""
    scale = float(np.ptp(plain.slice.polygon, axis=0).max())
    out_scale = float(np.abs(plain.affine).max())
    a, b = keyed(tiled), keyed(plain)
    assert len(tiled) == len(plain)
    assert set(a) == set(b)
    i = np.array([a[k] for k in b])
    j = np.array(list(b.values()))
    np.testing.assert_allclose(tiled.areas[i], plain.areas[j], rtol=0, atol=1e-9 * plain.slice.area)
    np.testing.assert_allclose(tiled.affine[i], plain.affine[j], rtol=0, atol=1e-9 * out_scale * scale)
    np.testing.assert_allclose(tiled.centroid_outputs[i], plain.centroid_outputs[j], rtol=0, atol=1e-9 * out_scale * scale)
    n = tiled.vertex_counts[i]
    np.testing.assert_array_equal(n, plain.vertex_counts[j])
    # vertex k of region i[m] matches vertex (k - shift) of region j[m]: the rotation that best aligns vertex 0 of j
    starts_t, starts_p = np.cumsum(tiled.vertex_counts) - tiled.vertex_counts, np.cumsum(plain.vertex_counts) - plain.vertex_counts
    pair = np.repeat(np.arange(len(i)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    verts_t, units_t = np.concatenate(tiled.polygons), np.concatenate(tiled.edge_units)
    verts_p, units_p = np.concatenate(plain.polygons), np.concatenate(plain.edge_units)
    dist = np.linalg.norm(verts_t[starts_t[i][pair] + k] - verts_p[starts_p[j]][pair], axis=1)
    order = np.lexsort((dist, pair))
    shift = k[order][np.r_[True, pair[order][1:] != pair[order][:-1]]]
    rolled = starts_t[i][pair] + (k + shift[pair]) % n[pair]
    np.testing.assert_allclose(verts_t[rolled], verts_p[starts_p[j][pair] + k], rtol=0, atol=1e-9 * scale)
    np.testing.assert_array_equal(units_t[rolled], units_p[starts_p[j][pair] + k])
    assert abs(tiled.decision_boundary().length - plain.decision_boundary().length) <= 1e-9 * scale
    assert tiled.verify(n_points=500).ok


def cnn() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 4, 2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4, 3)).eval()


def cnn_slice(seed: int = 0) -> sc.Slice:
    gen = torch.Generator().manual_seed(seed)
    return sc.Slice.from_points(*torch.rand(3, 1, 6, 6, generator=gen))


class Maxout(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.l1, self.l2 = nn.Linear(2, 6 * 3), nn.Linear(6, 2)

    def forward(self, x):
        return self.l2(self.l1(x).view(-1, 6, 3).max(dim=-1).values)


def run(model, sl, **options) -> sc.Partition:
    return sc.partition(model, sl, progress=False, **options)


# -- tiled == untiled ---------------------------------------------------------------------


@pytest.mark.parametrize("seed,tiles", [(0, 3), (2, (4, 2))])
def test_tiles_equal_untiled_on_random_mlps(seed, tiles):
    model = random_mlp([24, 24], 3, seed)
    assert_same_partition(run(model, BOX2, tiles=tiles), run(model, BOX2))


@settings(max_examples=examples(6), deadline=None)
@given(seed=st.integers(0, 10**6), ku=st.integers(1, 4), kv=st.integers(1, 4), integer=st.booleans())
def test_tiles_equal_untiled_property(seed, ku, kv, integer):
    """Random and integer weights (one hidden layer for integers: deeper integer units can cancel
    to zero up to rounding over a region, and then rounding noise decides their code, tiled or not)."""
    model = random_mlp([10] if integer else [10, 10], 2, seed, integer=integer)
    assert_same_partition(run(model, BOX2, tiles=(ku, kv)), run(model, BOX2))


def test_tiles_on_a_cluster_equal_untiled_cnn_with_max_pooling(client):
    model, sl = cnn(), cnn_slice()
    plain = run(model, sl)
    assert len(plain) > 50
    assert_same_partition(run(model, sl, tiles=3, executor=client), plain)


def test_tiles_equal_untiled_maxout():
    model = Maxout().eval()
    assert_same_partition(run(model, BOX2, tiles=(3, 2)), run(model, BOX2))


@pytest.mark.parametrize("tiles", [2, 4, (4, 2)])
def test_seams_along_unit_lines_through_vertices_and_duplicates(tiles):
    """Unit lines u = 0 (twice: duplicate units), v = 0, u = 1 and u + v = 0 lie on the seams
    or pass through the seams' crossing points; u - v = 1 meets the seams at lattice points."""
    lines = [[1, 0], [1, 0], [0, 1], [1, 0], [1, 1], [1, -1], [2, 1]]
    model = arrangement_model(lines, [0, 0, 0, -1, 0, -1, 1])
    plain = run(model, BOX2)
    seam_edges = {tuple(u) for e in plain.edge_units for u in e if u[0] >= 0}
    assert (0, 0) in seam_edges and (0, 1) not in seam_edges  # the lowest duplicate carries the edge
    assert_same_partition(run(model, BOX2, tiles=tiles), plain)


@pytest.mark.parametrize("seed", [0, 2])
def test_seams_on_integer_weight_networks(seed):
    """Integer weights, half-integer biases: lines through the lattice points where seams cross."""
    model = random_mlp([8, 8], 2, seed, integer=True)
    assert_same_partition(run(model, BOX2, tiles=4), run(model, BOX2))


def test_tiles_of_a_rotated_hexagon_slice():
    model = random_mlp([16, 16], 2, 7)
    angle = np.linspace(0, 2 * np.pi, 7)[:-1] + 0.3
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((2, 2)))
    sl = sc.Slice(np.array([0.3, -0.2]), q, 1.7 * np.c_[np.cos(angle), np.sin(angle)])
    assert_same_partition(run(model, sl, tiles=3), run(model, sl))


def test_executor_without_tiles_runs_the_slice_there(client):
    model = random_mlp([16], 2, 4)
    assert_same_partition(run(model, BOX2, executor=client), run(model, BOX2))


# -- partition_many -------------------------------------------------------------------------


def test_partition_many_slices_equals_the_loop(client):
    model = cnn()
    slices = [cnn_slice(s) for s in range(4)]
    many = sc.partition_many(model, slices, executor=client, progress=False)
    for got, sl in zip(many, slices):
        assert got.slice is not sl  # it came back from a worker
        assert_same_partition(got, run(model, sl))


def test_partition_many_checkpoints_equals_the_loop():
    models = [random_mlp([12, 12], 2, s) for s in range(3)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        many = sc.partition_many(models, BOX2, executor=pool, progress=False)
    for got, model in zip(many, models):
        assert_same_partition(got, run(model, BOX2))
    pairs = sc.partition_many(models, [BOX2, sc.Slice.box((0, 0), (1, 1)), BOX2], progress=False)
    assert [len(p) for p in pairs] == [len(run(m, s)) for m, s in zip(models, [BOX2, sc.Slice.box((0, 0), (1, 1)), BOX2])]


def test_recorder_with_an_executor_equals_recording_here():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = torch.randn(64, 2), torch.randint(0, 2, (64,))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        here, there = sc.record(BOX2, every=2, keep_models=True), sc.record(BOX2, every=2, keep_models=True, executor=pool)
        for _ in range(6):
            here(model)
            assert there(model) is None  # a copy of the model is kept, partitioned later
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        assert there.steps == here.steps == [0, 2, 4]
        for got, expected in zip(there.snapshots, here.snapshots, strict=True):
            assert_same_partition(got, expected)
    assert len({len(p) for p in here.snapshots}) > 1  # training changed the partition


def test_compare_with_an_executor(client):
    models = {"a": random_mlp([8], 2, 0), "b": random_mlp([8, 8], 2, 1)}
    slices = [BOX2, sc.Slice.box((0, 0), (1, 1))]
    here = sc.compare(models, slices, show=False)
    there = sc.compare(models, slices, show=False, executor=client)
    assert list(there["n_regions"]) == list(here["n_regions"])  # DataFrames, one row per model


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tiles", [0, -1, 1.5, (2,), (2, 0), "2", True])
def test_bad_tiles(tiles):
    with pytest.raises(ValueError, match="tiles must be"):
        run(random_mlp([4], 1, 0), BOX2, tiles=tiles)


def test_bad_executor_and_arguments():
    model = random_mlp([4], 1, 0)
    with pytest.raises(TypeError, match="executor must be"):
        run(model, BOX2, executor="cluster")
    with pytest.raises(ValueError, match="equal-length"):
        sc.partition_many([model, model], [BOX2] * 3)
    with pytest.raises(TypeError, match="Slice"):
        sc.partition_many(model, "box")


def test_missing_dask_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install \"splinecam\[distributed\]\""):
        run(random_mlp([4], 1, 0), BOX2, executor="local")


def test_local_workers_keep_glibc_malloc_defaults():
    """Dask's nannies set MALLOC_TRIM_THRESHOLD_, which pins glibc's mmap threshold and makes a
    partition 1.4x slower; executor="local" starts its workers without it (and one thread each)."""
    model = random_mlp([16, 16], 1, 0)
    with executor_scope("local") as c:
        env = c.run(lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS")))
        assert set(env.values()) == {(None, "1")}
        assert_same_partition(run(model, BOX2, tiles=2, executor=c), run(model, BOX2))


def test_a_failing_tile_is_named(client):
    with pytest.raises(sc.RegionLimitError, match=r"tile \(\d, \d\) of the 2 x 2 tiles"):
        run(random_mlp([32, 32], 1, 0), BOX2, tiles=2, executor=client, max_regions=20)


def _die(path, always):
    """Kill the worker process: always, or only the first time (when ``path`` does not exist yet)."""
    if always or not os.path.exists(path):
        open(path, "w").close()
        os._exit(1)
    return "done"


def test_a_dead_worker_is_retried_and_one_that_keeps_dying_is_named(tmp_path):
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
            with distributed.Client(cluster) as c:
                assert run_tasks(c, _die, [(str(tmp_path / "once"), False)], ["slice 0"], progress=False) == ["done"]
                with pytest.raises(TaskError, match="slice 1 kept failing: the worker process running it died"):
                    run_tasks(c, _die, [(str(tmp_path / "always"), True)], ["slice 1"], progress=False)


def _sleep(seconds):
    time.sleep(seconds)
    return seconds


def test_ctrl_c_cancels_the_outstanding_tasks(client):
    threading.Timer(0.3, _thread.interrupt_main).start()
    with pytest.raises(KeyboardInterrupt):
        run_tasks(client, _sleep, [(1.0,)] * 6, [f"slice {i}" for i in range(6)], progress=False)
    deadline = time.monotonic() + 10
    while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0
