"""Tiled partitions equal untiled ones; partition_many equals the loop; executors (a real Dask
LocalCluster of worker processes, concurrent.futures) and their failure modes."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
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
from splinecam.run.executors import TaskError, run_tasks, unguarded_call
from helpers import assert_same_partition

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


def test_partition_many_paths_and_volumes_on_a_cluster(client):
    model = random_mlp([10, 10], 2, 6, inputs=3)
    paths = [sc.Path.segment([-1.0, 0.0, 1.0], [1.0, 0.5, -1.0]), sc.Path.ellipse([0.0, 0.0, 0.0], [1.0, 0, 0], [0, 1.0, 0])]
    volumes = [sc.Volume.box([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0])]
    there = sc.partition_many(model, paths + volumes, executor=client, progress=False)
    here = [sc.partition(model, domain, progress=False) for domain in paths + volumes]
    assert [type(p) for p in there] == [sc.PathPartition, sc.PathPartition, sc.VolumePartition]
    for a, b in zip(there[:2], here[:2]):
        assert np.array_equal(a.t, b.t) and np.array_equal(a.packed_codes, b.packed_codes)
    assert len(there[2]) == len(here[2]) and np.isclose(there[2].volumes.sum(), 8.0)


def test_partition_many_of_tiled_partitions_here():
    """A task that runs tasks (tiles inside partition_many's tasks, in this process) does not wait
    on itself."""
    model = random_mlp([12, 12], 2, 5)
    parts = sc.partition_many(model, [BOX2, sc.Slice.box((0, 0), (1, 1))], tiles=2, progress=False)
    for got, sl in zip(parts, [BOX2, sc.Slice.box((0, 0), (1, 1))]):
        assert_same_partition(got, run(model, sl))


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


def _page_faults() -> int:
    """Minor page faults while making and freeing 50 arrays of 4 MiB: tens of thousands where
    glibc maps every large array afresh, a few hundred where it reuses its heap."""
    import resource

    import numpy

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        numpy.ones(1 << 19)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_glibc_malloc_defaults_undo_dasks_trim_threshold():
    """A process started as Dask's nannies start workers (MALLOC_TRIM_THRESHOLD_=65536) maps
    every array above 128 KiB afresh; after glibc_malloc_defaults it reuses its heap."""
    import inspect

    script = (inspect.getsource(_page_faults) + "\nfrom splinecam.run.executors import glibc_malloc_defaults\n"
              "print(_page_faults(), glibc_malloc_defaults(), glibc_malloc_defaults(), _page_faults())")
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536", "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(os.path.dirname(sc.__file__)), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    before, tuned, again, after = done.stdout.split()
    assert int(before) > 10_000 and tuned == again == "True" and int(after) < 2_000, done.stdout


def test_tasks_on_a_default_dask_cluster_reuse_the_heap(client):
    """The module's cluster is started with Dask's defaults (MALLOC_TRIM_THRESHOLD_=65536 in its
    workers); after a task has run there, each worker reuses its heap for large arrays."""
    from splinecam.partition import _partition_task

    model = random_mlp([8], 1, 0)
    for worker in client.scheduler_info()["workers"]:
        client.submit(_partition_task, model, BOX2, {"progress": False}, workers=[worker], pure=False).result()
    assert set(client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()) == {"65536"}
    assert all(faults < 2_000 for faults in client.run(_page_faults).values())


def _run_as_main(monkeypatch, tmp_path, source: str, start_method="spawn"):
    """unguarded_call as seen from a script ``source`` run as __main__ (it stores the result in ``found``)."""
    import types

    path = tmp_path / "script.py"
    path.write_text(source)
    main = types.ModuleType("__main__")
    main.__file__ = str(path)
    main.unguarded_call, main.start_method = unguarded_call, start_method
    monkeypatch.setitem(sys.modules, "__main__", main)
    exec(compile(source, str(path), "exec"), vars(main))
    return main.found


@pytest.mark.parametrize("source,line", [
    ("import os\nfound = unguarded_call(start_method)\n", 2),
    ("def f():\n    return unguarded_call(start_method)\n\nif True:\n    found = f()\n", 5),
    ("if __name__ != '__main__':\n    pass\nfound = unguarded_call(start_method)\n", 3),
    ("if __name__ == '__main__':\n    pass\nfound = unguarded_call(start_method)\n", 3),
    ("found = None\nif __name__ == '__main__':\n    found = unguarded_call(start_method)\n", None),
    ("def f():\n    return unguarded_call(start_method)\n\nif '__main__' == __name__:\n    found = f()\n", None),
])
def test_unguarded_call_is_found(monkeypatch, tmp_path, source, line):
    found = _run_as_main(monkeypatch, tmp_path, source)
    assert found == (None if line is None else (str(tmp_path / "script.py"), line))
    assert _run_as_main(monkeypatch, tmp_path, source, "fork") is None  # forked workers do not import the script


def test_unguarded_script_fails_fast_with_what_to_add(tmp_path):
    """A real script without the guard: a clear error before any worker starts (workers would
    re-run the script and start clusters of their own)."""
    script = tmp_path / "unguarded.py"
    script.write_text("import torch\nimport splinecam as sc\n\nprint('top of the script')\n"
                      "model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))\n"
                      "part = sc.partition(model, sc.Slice.box((-1, -1), (1, 1)), tiles=2, executor='local')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.dirname(sc.__file__)),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert done.returncode == 1
    assert done.stdout == "top of the script\n"  # run once: no worker re-ran it
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: executor=\"local\" starts worker processes") and f"{script}" in last
    assert 'if __name__ == "__main__":' in last and "line 6" in last


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


def _wait_for(started, stop):
    """A task that runs until the file ``stop`` exists (at most 120 s), after creating ``started``."""
    open(started, "a").close()
    deadline = time.monotonic() + 120
    while not os.path.exists(stop) and time.monotonic() < deadline:
        time.sleep(0.05)
    return 0


def test_ctrl_c_cancels_the_outstanding_tasks(client, tmp_path, ctrl_c):
    """The tasks cannot finish before the interrupt: they run until the test lets them stop.
    Ctrl-C is pressed once a task runs, and again every 2 s until one lands (an interrupt that
    Python delivers inside a finaliser is lost)."""
    started, stop = str(tmp_path / "started"), str(tmp_path / "stop")
    caught = threading.Event()

    def press_ctrl_c():
        while not os.path.exists(started):
            time.sleep(0.02)
        while not caught.is_set() and not os.path.exists(stop):
            ctrl_c()
            caught.wait(2.0)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    try:
        run_tasks(client, _wait_for, [(started, stop)] * 6, [f"slice {i}" for i in range(6)], progress=False)
    except KeyboardInterrupt:
        caught.set()
    finally:
        open(stop, "w").close()  # the running tasks end
    assert caught.is_set(), "run_tasks returned although its tasks could not finish"
    deadline = time.monotonic() + 10
    while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0
