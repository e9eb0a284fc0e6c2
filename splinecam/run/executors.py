"""Run partitions elsewhere: in this process, on a local Dask cluster, on any Dask cluster
(``dask.distributed.Client``, e.g. on SLURM through ``dask-jobqueue``) or on any
``concurrent.futures.Executor``.  Dask does the scheduling, retries and data movement;
this module only submits tasks, shows one progress bar, and turns failures and Ctrl-C
into clear outcomes."""

from __future__ import annotations

import ast
import atexit
import concurrent.futures
import ctypes
import functools
import logging
import os
import platform
import sys
import threading
from contextlib import contextmanager

import torch
from torch import nn

from ..errors import RegionLimitError, TaskError
from .watch import progress_bar

__all__ = ["close_local_cluster", "executor_scope", "glibc_malloc_defaults", "import_distributed",
           "one_thread", "run_tasks", "task_scope", "unguarded_call"]

_INSTALL = 'pip install "splinecam[distributed]"'
# torch.fx tracing is not thread-safe: tasks that share a process (thread pools, Dask workers
# with several threads) run one at a time; use one single-threaded worker process per core
TASK_LOCK = threading.RLock()  # (re-entrant: a task may run tasks, e.g. partition_many of tiled partitions, here)


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


@functools.cache
def glibc_malloc_defaults() -> bool:
    """Where ``MALLOC_TRIM_THRESHOLD_`` is set (Dask's nannies start every worker with 65536), set
    glibc's malloc thresholds to what its dynamic default reaches for large arrays: mmap 32 MiB,
    trim 64 MiB.  The variable also pins the mmap threshold at 128 KiB, so that every larger
    array is mapped and unmapped afresh, and the tiles of a partition cost 1.26x the CPU time
    (benchmarks/bench_distributed.py, "pinned").  Once per process (glibc only); True if it set them."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 64 << 20))


@contextmanager
def task_scope():
    """What every task runs in: glibc's malloc thresholds (:func:`glibc_malloc_defaults`), one
    task at a time in a process (:data:`TASK_LOCK`), torch on one thread."""
    glibc_malloc_defaults()
    with TASK_LOCK, one_thread():
        yield


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
    executor.  ``"local"``: the client of this process's :func:`local_client` (Ctrl-C closes
    that cluster, so that no worker goes on computing a cancelled task)."""
    if executor is None or _is_dask_client(executor) or isinstance(executor, concurrent.futures.Executor):
        yield executor
    elif isinstance(executor, str) and executor == "local":
        client = local_client()
        try:
            yield client
        except KeyboardInterrupt:
            close_local_cluster()
            raise
    else:
        raise TypeError(
            f"executor must be None, \"local\", a dask.distributed.Client or a concurrent.futures.Executor, "
            f"got {executor!r}."
        )


_LOCAL = {}  # "cluster", "client": the LocalCluster of executor="local", while it runs
_LOCAL_LOCK = threading.RLock()


def local_client():
    """The client of this process's ``LocalCluster`` (one single-threaded worker process per
    core): started on the first ``executor="local"`` call, reused by the later ones, closed at
    exit or by :func:`close_local_cluster`.  Raises RuntimeError, before starting anything, where
    the workers would re-run the script that makes the call (see :func:`unguarded_call`)."""
    with _LOCAL_LOCK:
        client = _LOCAL.get("client")
        if client is not None and client.status == "running" and _LOCAL["cluster"].status.name == "running":
            return client
        close_local_cluster()  # a cluster that stopped (its workers killed, say): start afresh
        distributed = import_distributed()
        import dask  # installed with distributed

        where = unguarded_call(dask.config.get("distributed.worker.multiprocessing-method"))
        if where is not None:
            raise RuntimeError(
                f'executor="local" starts worker processes that import your script {where[0]} afresh, and its '
                f'line {where[1]} would run again in each of them. Put the code that runs the script under '
                '`if __name__ == "__main__":` (see "Many cores and clusters" in the README).')
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        cluster = distributed.LocalCluster(n_workers=cores, threads_per_worker=1, processes=True,
                                           dashboard_address=":0", silence_logs=logging.ERROR)
        if not _LOCAL.get("registered"):
            atexit.register(close_local_cluster)
        _LOCAL.update(cluster=cluster, client=distributed.Client(cluster), registered=True)
        return _LOCAL["client"]


def close_local_cluster() -> None:
    """Close the ``LocalCluster`` that ``executor="local"`` started in this process, if any (it is
    also closed at exit); the next such call starts a new one."""
    with _LOCAL_LOCK:
        client, cluster = _LOCAL.pop("client", None), _LOCAL.pop("cluster", None)
        if client is not None:
            client.close()
            cluster.close()


def unguarded_call(start_method: str) -> tuple[str, int] | None:
    """(file, line) of the script's top-level line that leads to this call, if worker processes
    started by ``start_method`` would run it again: they import the main script afresh (all but
    "fork"), running its top level but for the block ``if __name__ == "__main__":``.  None where
    the call comes from that block, from a notebook, ``python -c`` or another thread, or where
    the script cannot be read."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if start_method == "fork" or path is None:
        return None
    frame = sys._getframe()
    while frame is not None and not (frame.f_code.co_name == "<module>" and frame.f_globals is vars(main)):
        frame = frame.f_back
    if frame is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None
    line = frame.f_lineno
    guarded = any(isinstance(node, ast.If) and node.lineno <= line <= node.end_lineno and _is_main_test(node.test)
                  for node in tree.body)
    return None if guarded else (path, line)


def _is_main_test(test: ast.expr) -> bool:
    """Whether ``test`` is ``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = {ast.dump(test.left), ast.dump(test.comparators[0])}
    return sides == {ast.dump(ast.Name("__name__", ast.Load())), ast.dump(ast.Constant("__main__"))}


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
    bar = progress_bar(progress, len(tasks), desc, "task")
    bar = bar if bar is not None else _NoBar()
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


class _NoBar:
    """No progress shown."""

    def update(self, n=1):
        pass

    def close(self):
        pass


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


