"""Run partitions elsewhere: in this process, on a local Dask cluster, on any Dask cluster
(``dask.distributed.Client``, e.g. on SLURM through ``dask-jobqueue``) or on any
``concurrent.futures.Executor``.  Dask does the scheduling, retries and data movement;
this module only submits tasks, shows one progress bar, and turns failures and Ctrl-C
into clear outcomes."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import sys
import threading
from contextlib import contextmanager

import torch
from torch import nn

from ..errors import RegionLimitError, TaskError
from ..slices import Slice

_INSTALL = 'pip install "splinecam[distributed]"'
# torch.fx tracing is not thread-safe: tasks that share a process (thread pools, Dask workers
# with several threads) run one at a time; use one single-threaded worker process per core
TASK_LOCK = threading.Lock()


@contextmanager
def one_thread():
    """Run torch on one thread inside the block.  Tiny tensors gain nothing from threads, and
    on a busy machine waiting threads cost many times the work (see ``splinecam demo``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's mmap
# threshold at 128 KiB: every larger tensor is then mapped and unmapped afresh, and a partition runs
# 1.4x slower (w256 tiles on 2 workers, benchmarks/bench_distributed.py).  Unset it for our workers.
WORKER_MALLOC_SETTING = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


@contextmanager
def _unset_env(name: str):
    """Leave the environment variable ``name`` unset inside the block (restored after it).  Dask's
    nannies copy their variables into this process's environment, where any process started
    later inherits them; the nannies made inside the block read the setting above instead."""
    value = os.environ.pop(name, None)
    try:
        yield
    finally:
        if value is not None:
            os.environ[name] = value


def import_distributed():
    """The ``dask.distributed`` module, or an ImportError saying what to install."""
    try:
        import distributed
    except ImportError:
        raise ImportError(f'executor="local" and Dask clients need dask.distributed: {_INSTALL}') from None
    return distributed


def _is_dask_client(executor) -> bool:
    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(executor, distributed.Client)


@contextmanager
def executor_scope(executor):
    """Yield what to submit to: None (this process), a Dask client or a concurrent.futures
    executor.  ``"local"`` starts a ``LocalCluster`` with one single-threaded worker process per
    core and closes it on exit."""
    if executor is None or _is_dask_client(executor) or isinstance(executor, concurrent.futures.Executor):
        yield executor
    elif isinstance(executor, str) and executor == "local":
        distributed = import_distributed()
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        import dask  # installed with distributed

        with dask.config.set({WORKER_MALLOC_SETTING: None}), _unset_env("MALLOC_TRIM_THRESHOLD_"):
            cluster = distributed.LocalCluster(n_workers=cores, threads_per_worker=1, processes=True,
                                               dashboard_address=":0", silence_logs=logging.ERROR)
        with cluster, distributed.Client(cluster) as client:
            yield client
    else:
        raise TypeError(
            f"executor must be None, \"local\", a dask.distributed.Client or a concurrent.futures.Executor, "
            f"got {executor!r}."
        )


def _failure(name: str, err: BaseException) -> Exception:
    """The error to raise when the task ``name`` failed with ``err``."""
    if isinstance(err, RegionLimitError):
        return RegionLimitError(f"{name}: {err}")
    killed = sys.modules.get("distributed") and isinstance(err, sys.modules["distributed"].KilledWorker)
    if killed or isinstance(err, concurrent.futures.BrokenExecutor):
        return TaskError(
            f"{name} kept failing: the worker process running it died ({type(err).__name__}: {err}). "
            "Out of memory? Lower max_memory, use more tiles, or give the workers more memory."
        )
    return TaskError(f"{name} failed: {type(err).__name__}: {err}")


def run_tasks(client, fn, tasks: list[tuple], names: list[str], progress=None, desc: str = "splinecam") -> list:
    """``[fn(*args) for args in tasks]`` on ``client`` (from :func:`executor_scope`), in order.

    One progress bar counts finished tasks (progress: None after 2 s, True, False).
    Models (``nn.Module`` arguments) are sent to a Dask cluster once each.  A failed task
    raises :class:`TaskError` naming it (``names[i]``); Ctrl-C cancels the outstanding tasks.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc=desc, unit="task", delay=0 if progress else 2.0, disable=progress is False)
    try:
        if client is None:
            results = []
            for args in tasks:
                results.append(fn(*args))
                bar.update()
            return results
        return _run_remote(client, fn, tasks, names, bar)
    finally:
        bar.close()


def _run_remote(client, fn, tasks, names, bar) -> list:
    dask = _is_dask_client(client)
    if dask:
        sent = {}
        for args in tasks:  # each model once: scatter it, pass the future
            for a in args:
                if isinstance(a, nn.Module) and id(a) not in sent:
                    sent[id(a)] = client.scatter(a, hash=False, broadcast=True)  # on every worker: no pull to one
        tasks = [tuple(sent.get(id(a), a) for a in args) for args in tasks]
        futures = [client.submit(fn, *args, pure=False) for args in tasks]
        # results come over as each task finishes, while the others still run
        completed = import_distributed().as_completed(futures, with_results=True, raise_errors=False)
    else:
        futures = [client.submit(fn, *args) for args in tasks]
        completed = ((f, None) for f in concurrent.futures.as_completed(futures))
    index = {id(f): i for i, f in enumerate(futures)}
    results = [None] * len(futures)
    try:
        for future, result in completed:
            i = index[id(future)]
            err = future.exception()
            if err is not None:
                raise _failure(names[i], err) from err
            results[i] = result if dask else future.result()
            bar.update()
        return results
    except BaseException:  # a failure or Ctrl-C: nothing more is computed for this call
        if dask:
            client.cancel(futures)
        else:
            for f in futures:
                f.cancel()
        raise


def _as_list(items, kind) -> list | None:
    """``items`` as a list if it is a sequence of ``kind``, None if it is one ``kind``."""
    if isinstance(items, kind):
        return None
    if isinstance(items, (list, tuple)) and items and all(isinstance(x, kind) for x in items):
        return list(items)
    name = "torch.nn.Module" if kind is nn.Module else "splinecam.Slice"
    raise TypeError(f"expected a {name} or a non-empty list of them, got {type(items).__name__}.")


def pairs(models_or_model, slices_or_slice) -> tuple[list[tuple[nn.Module, Slice]], list[str]]:
    """The (model, slice) pairs of :func:`partition_many`'s arguments, and their names."""
    models, slices = _as_list(models_or_model, nn.Module), _as_list(slices_or_slice, Slice)
    if models is not None and slices is not None and len(models) != len(slices):
        raise ValueError(f"got {len(models)} models and {len(slices)} slices; pass equal-length lists, "
                         "or one model (or one slice) for all.")
    n = len(models) if models is not None else len(slices) if slices is not None else 1
    names = [" on ".join(([f"model {i}"] if models is not None else []) + ([f"slice {i}"] if slices is not None else []))
             or "the slice" for i in range(n)]
    models = models if models is not None else [models_or_model] * n
    slices = slices if slices is not None else [slices_or_slice] * n
    return list(zip(models, slices)), names


def _partition_task(model, sl, options):
    from ..partition import partition

    with TASK_LOCK, one_thread():
        return partition(model, sl, **options)


def partition_many(models_or_model, slices_or_slice, executor=None, progress=None, **partition_options) -> list:
    """Partitions of one model on many slices, of many models (checkpoints) on one slice, or of
    equal-length lists of both, in order; each is :func:`splinecam.partition` of its pair.

    executor: None (this process), ``"local"`` (a Dask ``LocalCluster``, one worker process per
    core, started and closed by the call), a ``dask.distributed.Client`` or any
    ``concurrent.futures.Executor``.  Models and slices are sent to the workers as given and
    each worker traces its model.  progress: one bar over all the partitions.
    """
    jobs, names = pairs(models_or_model, slices_or_slice)
    options = {**partition_options, "progress": False}
    with executor_scope(executor) as client:
        return run_tasks(client, _partition_task, [(m, s, options) for m, s in jobs], names, progress, "partitions")
