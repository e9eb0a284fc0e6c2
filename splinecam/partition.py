"""``partition``: the exact linear regions of a model on a slice, and the ``Partition`` result
with its public ragged view, queries, analysis methods and save/load."""

from __future__ import annotations

import copy
import os
import time
from dataclasses import asdict, dataclass, replace
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ._version import __version__
from .errors import InvalidPartitionFile, RegionLimitError, StoppedEarly
from .extras import late
from .geometry import RegionGrid
from .io.files import CURVED_FILE, FORMAT, read_arrays, save_arrays
from .run.chain import Chain, ChainRun, cached_chain, chain_applies
from .run.curved import DECISION, UNCERTIFIED, CurvedPieces, SineNet, certify, read_sine_net, sine_encoding
from .run.compose import compose
from .run.engine import Engine
from .run.executors import executor_scope, run_tasks, task_scope
from .run.plan import DEFAULT_MEMORY, Plan, parse_bytes
from .run.regions import LayerInfo, RegionArrays, unpack_codes, vertex_means
from .run.tiles import Grid, merge
from .run.trace import Graph, frozen, prepare, shape_error
from .run.watch import Watch
from .paths import Path
from .slices import Slice, as_points
from .volumes import Volume

__all__ = ["CurvedPartition", "NetworkCopy", "Options", "Partition", "check_shapes", "checked_arguments", "default_device", "pairs",
           "parse_bytes", "partition",
           "partition_graph", "partition_many", "usable_device"]

if TYPE_CHECKING:  # the analysis layer sits above this module: its types only
    from .analysis.boundary import Boundary, ClassCells
    from .analysis.mesh import PlanarMesh
    from .analysis.sampling import BoundarySamples, VerifyReport

@dataclass(frozen=True)
class Options:
    """The engine options of :func:`partition` (see there)."""

    max_regions: int | None = None
    max_memory: int | float | str = DEFAULT_MEMORY
    chunk_size: int | None = None
    rtol: float = 1e-10
    timeout: float | None = None
    tol: float | None = None
    compose: bool = True

    def __post_init__(self):
        if self.max_regions is not None and not (isinstance(self.max_regions, int) and self.max_regions >= 1):
            raise ValueError(f"max_regions must be a positive integer (or None: what the available memory holds), "
                             f"got {self.max_regions!r}.")
        if self.timeout is not None and not (isinstance(self.timeout, (int, float)) and self.timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds (or None), got {self.timeout!r}.")
        if self.chunk_size is not None and not (isinstance(self.chunk_size, int) and self.chunk_size >= 1):
            raise ValueError(f"chunk_size must be a positive integer (or None to use max_memory), got {self.chunk_size!r}.")
        if not (isinstance(self.rtol, (int, float)) and 0 <= self.rtol < 1e-3):
            raise ValueError(f"rtol must be a small non-negative tolerance (default 1e-10), got {self.rtol!r}.")
        if self.tol is not None and not (isinstance(self.tol, (int, float)) and self.tol > 0):
            raise ValueError(f"tol must be a positive distance in slice units (or None: 1e-6 of the slice's size), "
                             f"got {self.tol!r}.")
        parse_bytes(self.max_memory)
        if not isinstance(self.compose, bool):
            raise ValueError(f"compose must be True or False, got {self.compose!r}.")

    @classmethod
    def of(cls, options: dict, caller: str) -> "Options":
        """Options from keyword arguments, with a clear error for unknown names."""
        try:  # (options are frozen: the same values give the same one, checked once)
            return _options_of(tuple(options.items()), tuple(map(type, options.values())))
        except TypeError:  # an unknown name, or a value that cannot be hashed: checked here, with its error
            unknown = sorted(set(options) - set(cls.__dataclass_fields__))
            if unknown:
                accepted = sorted(cls.__dataclass_fields__)
                raise TypeError(f"unknown option(s) {unknown}; {caller} accepts {accepted}.") from None
            return cls(**options)

    @cached_property
    def budget(self) -> int:
        """``max_memory`` in bytes: the working budget of a run."""
        return parse_bytes(self.max_memory)


@lru_cache(maxsize=256)
def _options_of(items: tuple, types: tuple) -> Options:
    """:class:`Options` of (name, value) ``items`` (their ``types`` in the key: ``True`` and ``1`` differ)."""
    return Options(**dict(items))


def checked_arguments(model, sl, device, options: dict, caller: str, kind: type = Slice) -> tuple[Options, torch.device]:
    """The arguments every entry point takes, checked once, in one way: ``sl`` must be a
    ``kind`` (a :class:`Slice`, or the domain the entry point takes); ``options`` are
    :class:`Options` (unknown names and bad values give one clear error naming ``caller``); the
    device is the model's by default, else one this torch can use."""
    if not isinstance(sl, kind):
        raise TypeError(f"sl must be a splinecam.{kind.__name__}, got {type(sl).__name__}.")
    options = Options.of(options, caller)
    return options, default_device(model) if device is None else usable_device(device)


def partition(model, sl: Slice, dtype=torch.float64, device=None, progress=None, *,
              max_regions: int | None = None, max_memory=DEFAULT_MEMORY, chunk_size: int | None = None,
              rtol: float = 1e-10, timeout: float | None = None, compose: bool = True, tiles=None, executor=None,
              tol: float | None = None) -> "Partition":
    """Exact partition of the slice ``sl`` into the linear regions of ``model``.

    model: a torch module of supported ops (the user's model is not modified);
    dtype: float64 unless you know better; device: where to compute (default
    the model's); progress: None shows a bar after 2 s, True always, False
    never; max_regions: raise :class:`RegionLimitError` beyond it (default:
    as many as half the memory available now holds); max_memory or chunk_size:
    bound on the regions (and on the per-piece records of a split) processed at
    once; rtol: relative tolerance for "a vertex lies on a line"; timeout:
    seconds, past which :class:`TimeLimitError` is raised.  Both errors carry
    ``.partial``: a partition of the regions finished so far (``complete`` False).
    compose: run chains of affine ops as one op where that is cheaper (a convolution and its
    BatchNorm, pools, flatten and the linear layer after them: :mod:`splinecam.run.compose`);
    the same partition either way, False only to compare.
    tiles: k (a k x k grid over the slice polygon's bounding box, cells clipped to it) or
    (ku, kv): partition the tiles and merge them into the same partition; executor: where the
    tiles (or the one slice) run: None (here), "local" (this process's Dask LocalCluster,
    started by the first such call and reused), a dask.distributed.Client or a
    concurrent.futures.Executor (see :mod:`splinecam.run.executors`).

    A model whose first op is a sine encoding (see :mod:`splinecam.run.curved`) has curved
    regions: the result is a :class:`CurvedPartition`, certified with boundary polylines within
    ``tol`` (slice units; default 1e-6 of the slice box's larger side) of the true curves.

    Example::

        part = sc.partition(model, sc.Slice.box((-1, -1), (1, 1)))

    On another kind of domain (a :class:`~splinecam.Path`), the function its ``partitioner``
    names runs with the same arguments (e.g. :func:`splinecam.path_partition.partition_path`,
    which returns a :class:`~splinecam.PathPartition`).
    """
    if getattr(sl, "partitioner", None) is not None:  # another kind of domain: its own driver
        return late(sl.partitioner)(model, sl, dtype, device, progress, max_regions=max_regions, max_memory=max_memory,
                                    chunk_size=chunk_size, rtol=rtol, timeout=timeout, tiles=tiles, executor=executor)
    started = time.perf_counter()
    limits = dict(max_regions=max_regions, max_memory=max_memory, chunk_size=chunk_size, rtol=rtol, timeout=timeout,
                  compose=compose)
    options, device = checked_arguments(model, sl, device, {**limits, "tol": tol}, "partition")
    if sine_encoding(model) is not None:
        if tiles is not None or executor is not None:
            raise ValueError("a model with a sine encoding is partitioned in one piece: leave tiles and executor out.")
        return partition_curved(model, sl, progress, options, started)
    if tiles is not None or executor is not None:
        return partition_tiled(model, sl, tiles, executor, dtype, device, progress, **limits)
    if chain_applies(dtype, device):
        chain = cached_chain(model, sl)
        if chain is not None:
            return partition_mlp(chain, model, sl, progress, options, started)
    twin, graph = prepare(model, dtype, device, sl.input_shape)
    return partition_graph(twin, graph, sl, dtype, device, progress, options, started)


# -- tiles and many slices: each task a partition ------------------------------------------


def _tile_task(model, tile: Slice, options: dict) -> tuple[RegionArrays, list[LayerInfo]]:
    with task_scope():
        part = partition(model, tile, **options)
    return part.arrays, part.layers


def partition_tiled(model, sl: Slice, tiles, executor, dtype, device, progress, **options) -> Partition:
    """:func:`splinecam.partition` with ``tiles`` and ``executor`` (see there): the tiles'
    partitions run on the executor and are merged into the partition of ``sl``."""
    start = time.perf_counter()
    grid = Grid.over(sl.polygon, 1 if tiles is None else tiles)
    cells = grid.cells(sl.polygon)
    device = default_device(model) if device is None else device
    twin, graph = prepare(model, dtype, device, sl.input_shape)  # fails early, here, on unsupported models
    options = {**options, "dtype": dtype, "device": device, "progress": False}
    jobs = [(model, Slice(sl.origin, sl.basis, cell), options) for _, cell in cells]
    names = [f"tile {index} of the {len(grid.u) - 1} x {len(grid.v) - 1} tiles" for index, _ in cells]
    with executor_scope(executor) as client:
        results = run_tasks(client, _tile_task, jobs, names, progress, "tiles")
    layers = results[0][1]
    merged = merge([index for index, _ in cells], [arrays for arrays, _ in results], layers, grid, sl)
    if options["max_regions"] is not None and len(merged.offsets) - 1 > options["max_regions"]:
        raise RegionLimitError(f"the partition has {len(merged.offsets) - 1:,} regions, more than max_regions="
                               f"{options['max_regions']:,}; use a smaller slice or pass a larger max_regions.")
    return Partition(merged, sl, layers, seconds=time.perf_counter() - start, model=twin, graph=graph)


DOMAINS = (Slice, Path, Volume)  # what partition (and partition_many) partitions


def _as_list(items, kind) -> list | None:
    """``items`` as a list if it is a sequence of ``kind``, None if it is one ``kind``."""
    if isinstance(items, kind):
        return None
    if isinstance(items, (list, tuple)) and items and all(isinstance(x, kind) for x in items):
        return list(items)
    name = "torch.nn.Module" if kind is nn.Module else "splinecam.Slice (or Path, or Volume)"
    raise TypeError(f"expected a {name} or a non-empty list of them, got {type(items).__name__}.")


def pairs(models_or_model, slices_or_slice) -> tuple[list[tuple[nn.Module, Slice]], list[str]]:
    """The (model, slice) pairs of :func:`partition_many`'s arguments, and their names."""
    models, slices = _as_list(models_or_model, nn.Module), _as_list(slices_or_slice, DOMAINS)
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
    with task_scope():
        return partition(model, sl, **options)


def partition_many(models_or_model, slices_or_slice, executor=None, progress=None, **partition_options) -> list:
    """Partitions of one model on many slices, of many models (checkpoints) on one slice, or of
    equal-length lists of both, in order; each is :func:`splinecam.partition` of its pair.  A
    slice here may be any domain of :func:`splinecam.partition` (a :class:`~splinecam.Path`, a
    :class:`~splinecam.Volume`).

    executor: None (this process), ``"local"`` (this process's Dask ``LocalCluster``, one worker
    process per core: see :func:`local_client`), a ``dask.distributed.Client`` or any
    ``concurrent.futures.Executor``.  Models and slices are sent to the workers as given and
    each worker traces its model.  progress: one bar over all the partitions.

    One plain MLP on many polylines in this process runs them all in one call of the compiled
    path kernel (:func:`splinecam.path_partition.partition_paths`: the same pieces, less time
    per path); with ``max_regions`` or ``timeout`` set (limits of each partition) each path is
    its own run.
    """
    if executor is None and isinstance(models_or_model, nn.Module) and isinstance(slices_or_slice, (list, tuple)) \
            and slices_or_slice and all(isinstance(sl, Path) for sl in slices_or_slice):
        together = late("path_partition.partition_paths")(models_or_model, list(slices_or_slice), progress=progress,
                                                          **partition_options)
        if together is not None:
            return together
    jobs, names = pairs(models_or_model, slices_or_slice)
    options = {**partition_options, "progress": False}
    with executor_scope(executor) as client:
        return run_tasks(client, _partition_task, [(m, s, options) for m, s in jobs], names, progress, "partitions")


def partition_mlp(chain: Chain, model, sl: Slice, progress, options: Options, started: float,
                  prune=None) -> "Partition":
    """The fast path of :func:`partition` for a plain MLP ``model`` read as ``chain`` (see
    :mod:`splinecam.run.chain`); ``prune``: see :class:`~splinecam.run.stack.WorkStack`.  The
    partition's network (what ``verify`` runs) is a float64 copy of ``model`` itself with the
    weights it has now, made when needed."""
    graph, shapes = chain.graph(sl.input_shape[0])
    if options.compose:  # a linear layer after another (no activation between) becomes one where cheaper
        graph, shapes = compose(graph, shapes, torch.float64, torch.device("cpu"))
    plan = Plan.make(graph, shapes, sl, torch.float64, torch.device("cpu"), options.rtol,
                     options.budget, options.chunk_size)
    network = frozen(model, torch.float64, "cpu", sl.input_shape, chain.state)
    return _execute(ChainRun(plan, prune), sl, progress, options, started, network)


def partition_curved(model, sl: Slice, progress, options: Options, started: float, net: SineNet | None = None,
                     network=None) -> "CurvedPartition":
    """:func:`partition` of a model that starts with a sine encoding: the certified pieces of
    :func:`splinecam.run.curved.certify` on ``sl`` (an axis-aligned box of ``uv``); ``net``,
    ``network``: the model already read (and its float64 copy), e.g. with another decision level."""
    box = np.array([sl.polygon.min(0), [sl.polygon.max(0)[0], sl.polygon.min(0)[1]], sl.polygon.max(0),
                    [sl.polygon.min(0)[0], sl.polygon.max(0)[1]]])
    if len(sl.polygon) != 4 or not np.allclose(np.sort(sl.polygon, 0), np.sort(box, 0), rtol=0, atol=0):
        raise ValueError("a model with a sine encoding is certified on box slices (Slice.box, Slice.around, "
                         "Slice.from_points); this slice's polygon is not an axis-aligned box of uv.")
    net = read_sine_net(model, sl) if net is None else net
    size = float(np.max(sl.polygon.max(0) - sl.polygon.min(0)))
    tol = 1e-6 * size if options.tol is None else float(options.tol)
    min_cell = size * 2.0 ** -26  # curves that only come close get separated, rounding aside
    max_regions = options.max_regions if options.max_regions is not None else 10**7
    watch = Watch(sl, progress, max_regions, options.timeout, started)
    network = (copy.deepcopy(model).to(torch.float64), None) if network is None else network  # nothing to trace
    watch.start()
    try:
        pieces = certify(net, sl, watch, tol, min_cell)
    except StoppedEarly as err:
        err.partial = CurvedPartition(err.pieces, sl, net, tol, watch.elapsed(), network, complete=False)
        raise
    finally:
        watch.close()
    return CurvedPartition(pieces, sl, net, tol, watch.elapsed(), network)


def default_device(model) -> torch.device:
    """The device of the model's first parameter (CPU without parameters)."""
    if isinstance(model, nn.Module):
        first = _first_parameter(model)
    else:
        first = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return first.device if first is not None else _CPU


_CPU = torch.device("cpu")


def _first_parameter(module: nn.Module) -> torch.Tensor | None:
    """``next(module.parameters())`` (or None), without its generators (a partition of a path is
    made per call): the module's own parameters first, then its children's, in order."""
    for p in module._parameters.values():
        if p is not None:
            return p
    for child in module._modules.values():
        if child is not None and (p := _first_parameter(child)) is not None:
            return p
    return None


def usable_device(device) -> torch.device:
    """``device`` as a torch.device, after checking that this torch can allocate on it.

    Raises ValueError (not torch's AssertionError or RuntimeError) saying what to do.
    """
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a torch device ({err}); use e.g. 'cpu' or 'cuda'.") from None
    try:
        torch.zeros(1, device=device)
    except (AssertionError, RuntimeError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(
            f"this torch ({torch.__version__}) cannot use device {str(device)!r} ({reason}).  Use device='cpu' "
            f"(the default for a model on the CPU), or install a torch build for that device and check that "
            f"the device is visible (e.g. torch.cuda.is_available())."
        ) from None
    return device


def partition_graph(twin, graph: Graph, sl: Slice, dtype, device, progress, options: Options,
                    started: float | None = None, prune=None) -> "Partition":
    """:func:`partition` of a prepared model copy ``twin`` whose traced graph is ``graph``; the
    time limit counts from ``started`` (a ``time.perf_counter()`` reading; default now);
    ``prune``: see :class:`~splinecam.run.stack.WorkStack` (its settled cells are the coarse ones)."""
    started = time.perf_counter() if started is None else started
    shapes = check_shapes(twin, graph, sl, dtype, device)
    ops, shapes = compose(graph, shapes, dtype, device) if options.compose else (graph, shapes)
    plan = Plan.make(ops, shapes, sl, dtype, device, options.rtol, options.budget,
                     options.chunk_size)
    return _execute(Engine(plan, prune), sl, progress, options, started, (twin, graph))


def _execute(run: Engine, sl: Slice, progress, options: Options, started: float, network) -> "Partition":
    """Run ``run`` (either executor) under the limits of ``options``; the partition of its
    regions, whose network is ``network`` (see :class:`Partition`)."""
    max_regions, note = region_limit(options.max_regions, run.plan.region_bytes(), run.plan.budget)
    watch = Watch(sl, progress, max_regions, options.timeout, started, note)
    try:
        result = run.run(watch)
    except StoppedEarly as err:
        err.partial = Partition(run.finished_regions(), sl, run.layers, seconds=watch.elapsed(), network=network,
                                complete=False)
        raise
    return Partition(result.regions, sl, result.layers, seconds=result.seconds, network=network, exact=result.exact)


_MEMORY_READING = [float("-inf"), 0]  # (time.perf_counter(), bytes) of the last reading


def available_memory() -> int:
    """Bytes of memory available to new allocations now (``MemAvailable`` of /proc/meminfo;
    free physical pages elsewhere; 8 GB where neither is known), read at most once a second."""
    if time.perf_counter() - _MEMORY_READING[0] < 1.0:
        return _MEMORY_READING[1]
    _MEMORY_READING[:] = time.perf_counter(), _read_available_memory()
    return _MEMORY_READING[1]


def _read_available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 10**9


def region_limit(max_regions: int | None, per_region: int, budget: int) -> tuple[int, str]:
    """The region limit and what its error says of it: ``max_regions``, or by default half the
    memory available now, less the working budget, divided by the bytes a region of the
    result costs (``per_region``)."""
    if max_regions is not None:
        return max_regions, ""
    room = max(available_memory() // 2 - 2 * budget, 0)
    return max(1000, room // per_region), " (the default: what half the available memory holds)"


def check_shapes(twin, graph: Graph, sl: Slice, dtype, device) -> list[tuple[int, ...]]:
    """Run the copy once at the slice origin; return the per-sample shape of every graph value."""
    x = torch.as_tensor(sl.origin, dtype=dtype, device=device)[None]
    try:
        with torch.no_grad():
            expected = twin(x)
            values = graph.forward(x, values=True)
    except RuntimeError as err:
        raise shape_error(tuple(sl.input_shape), str(err)) from None
    got = values[-1]
    rtol = 1e-9 if dtype == torch.float64 else 1e-4
    if not torch.allclose(expected, got, rtol=rtol, atol=rtol * float(expected.abs().max()) + 1e-30):
        raise RuntimeError("internal error: the traced graph does not reproduce the model; please report it.")
    if not torch.isfinite(expected).all():
        raise ValueError("the model returns NaN or inf at the slice origin.")
    return [tuple(v.shape[1:]) for v in values]


class NetworkCopy:
    """What the results of every kind of domain share: the float64 copy of the network a result
    is of, for its ``verify`` (``_network`` is (model copy, graph), or a callable that makes them
    when first needed: the fast path's), its length and outputs (from ``arrays``), its repr."""

    _network: tuple | object

    @property
    def model(self):
        """The float64 copy of the network the regions are of (None after :meth:`drop_model`
        and for a partition loaded from a file)."""
        return self._prepared()[0]

    @property
    def graph(self) -> Graph | None:
        """The traced graph of :attr:`model` (None where it is None)."""
        return self._prepared()[1]

    def _prepared(self) -> tuple:
        if callable(self._network):
            self._network = self._network()
        return self._network

    def drop_model(self) -> None:
        """Forget the copy of the network (to save memory); ``verify`` then needs ``model=``."""
        self._network = (None, None)

    def __len__(self) -> int:
        return len(self.arrays)

    @property
    def n_outputs(self) -> int:
        """K, the number of network outputs."""
        return self.arrays.affine.shape[1]

    def _summary(self, name: str, cells: str, fraction: float, domain: str) -> str:
        """``name(n cells + m coarse cells, K outputs, s s, partial: ...)``, the repr of a result
        with ``complete``, ``exact`` and ``seconds``; ``fraction`` of the ``domain`` covered."""
        partial = "" if self.complete else f", partial: {fraction:.1%} of the {domain}"
        coarse = int((~self.exact).sum())
        body = f"{len(self) - coarse:,} {cells}" + (f" + {coarse:,} coarse cells" if coarse else "")
        return f"{name}({body}, {self.n_outputs} outputs, {self.seconds:.2f} s{partial})"


class Partition(NetworkCopy):
    """The linear regions of a network on a slice.

    Regions are convex polygons in slice coordinates ``uv``; on region r the
    network is ``f(uv) = affine[r] @ (u, v, 1)``.  ``arrays`` is the public
    ragged view of everything (see :class:`splinecam.RegionArrays`); ``layers``
    describes the piecewise-linear layers of the codes and edge units.
    ``complete`` is False for the partial result of a run a limit stopped: its
    regions are exact but do not tile the slice.

    ``exact`` (R,) bool: True for a linear region.  Only the boundary-first results
    (:func:`splinecam.decision_boundary`) have False entries: *coarse cells*, unions of
    linear regions that a bound proved free of the boundary; their maps and centroid
    outputs are NaN and their codes zero.  Such a partition answers for the boundary it was
    refined for (``Boundary.partition``), not for other level sets.
    """

    curved = False  # regions bounded by curves (see CurvedPartition)
    tolerance = 0.0  # the distance of the region boundaries to the true ones (0: exact)

    def __init__(self, arrays: RegionArrays, sl: Slice, layers: list[LayerInfo], seconds: float = 0.0,
                 model=None, graph: Graph | None = None, complete: bool = True, exact: np.ndarray | None = None,
                 network=None):
        self.arrays = arrays
        self.complete = bool(complete)
        self.exact = np.ones(len(arrays), bool) if exact is None else np.asarray(exact, bool)
        self.slice = sl
        self.layers = list(layers)
        self.seconds = seconds
        # (model copy, graph), or ``network``: a callable that makes them when first needed
        self._network = (model, graph) if network is None else network

    def __repr__(self) -> str:
        return self._summary("Partition", "regions", self.area_fraction, "slice")

    @property
    def affine(self) -> np.ndarray:
        """(R, K, 3): on region r, output k is ``a*u + b*v + c``."""
        return self.arrays.affine

    @property
    def centroid_outputs(self) -> np.ndarray:
        """(R, K) network output at each region's centroid (computed relative to the slice
        centre, so it keeps its precision when the slice is far from the origin)."""
        return self.arrays.centroid_outputs

    @cached_property
    def polygons(self) -> list[np.ndarray]:
        """R arrays (n_i, 2), counter-clockwise."""
        return np.split(self.arrays.vertices, self.arrays.offsets[1:-1])

    @cached_property
    def edge_units(self) -> list[np.ndarray]:
        """R int arrays (n_i, 2): the (layer, unit) whose line carries edge j -> j+1, (-1, -1) on the border."""
        return np.split(self.arrays.edge_units, self.arrays.offsets[1:-1])

    @cached_property
    def areas(self) -> np.ndarray:
        """(R,) region areas."""
        return self.arrays.polygons().areas().numpy()

    @property
    def area_fraction(self) -> float:
        """The regions' total area over the slice's (1 for a complete partition, up to rounding)."""
        return float(self.areas.sum()) / self.slice.area

    @cached_property
    def centroids(self) -> np.ndarray:
        """(R, 2) vertex mean of each region (a point strictly inside it)."""
        return vertex_means(self.arrays.vertices, self.arrays.offsets)

    @property
    def vertex_counts(self) -> np.ndarray:
        """(R,) vertices per region."""
        return np.diff(self.arrays.offsets)

    @property
    def codes(self) -> np.ndarray:
        """(R, n_bits) bool activation pattern, layer after layer: unit above its breakpoint
        (the winner's index in binary for max-type units)."""
        return self.codes_of(np.arange(len(self)))

    def codes_of(self, regions) -> np.ndarray:
        """(N, n_bits) bool activation patterns of the regions ``regions`` (N,)."""
        return unpack_codes(self.arrays.packed_codes[regions], self.layers)

    # -- queries ----------------------------------------------------------------

    @cached_property
    def _grid(self) -> RegionGrid:
        return RegionGrid(self.arrays.polygons())

    def locate(self, uv) -> np.ndarray:
        """(N,) index of the region that contains each point (N, 2), -1 outside the slice."""
        return self._grid.locate(as_points(uv))

    def evaluate(self, uv) -> np.ndarray:
        """(N, K) network output through the region maps; NaN outside the slice."""
        uv = as_points(uv)
        idx = self.locate(uv)
        r = np.maximum(idx, 0)
        d = uv - self.centroids[r]  # the map taken about the region's centroid
        out = self.centroid_outputs[r] + self.affine[r, :, 0] * d[:, :1] + self.affine[r, :, 1] * d[:, 1:]
        out[idx < 0] = np.nan
        return out

    # -- analysis (each forwards to the function of the same name) ----------------

    @cached_property
    def _decision_boundary(self) -> Boundary:
        return late("analysis.boundary.partition_boundary")(self)

    def decision_boundary(self) -> Boundary:
        """K == 1: where the output crosses 0; K > 1: where the top logit is attained by two
        classes; see :func:`splinecam.analysis.boundary.partition_boundary`.  Computed once, then cached."""
        return self._decision_boundary

    def level_set(self, value: float, output: int = 0) -> Boundary:
        """Where output ``output`` crosses ``value``; see :func:`splinecam.analysis.boundary.partition_level_set`."""
        return late("analysis.boundary.partition_level_set")(self, value, output)

    def class_cells(self, output: int | None = None, level: float | None = None) -> ClassCells:
        """The exact cells where each class (or each side of a level set) wins; see
        :func:`splinecam.analysis.boundary.class_cells`."""
        return late("analysis.boundary.class_cells")(self, output=output, level=level)

    def verify(self, n_points: int | None = None, seed: int = 0, model=None, tol: float | None = None) -> VerifyReport:
        """Independent check by sampling; see :func:`splinecam.analysis.sampling.verify`."""
        return late("analysis.sampling.verify")(self, n_points=n_points, seed=seed, model=model, tol=tol)

    def sample_boundary(self, n: int, seed: int = 0, boundary: Boundary | None = None) -> BoundarySamples:
        """``n`` points uniform by length on the decision boundary (or ``boundary``); see
        :func:`splinecam.analysis.sampling.sample_boundary`."""
        return late("analysis.sampling.sample_boundary")(self, n, seed=seed, boundary=boundary)

    def stats(self) -> dict:
        """Summary statistics of the partition; see :func:`splinecam.analysis.stats.stats`."""
        return late("analysis.stats.stats")(self)

    def plot(self, ax=None, color_by: str = "random", boundary: bool = True, points=None, **kwargs) -> dict:
        """Draw the regions; every option of :func:`splinecam.viz.plot.plot_partition` is accepted."""
        return late("viz.plot.plot_partition")(self, ax=ax, color_by=color_by, boundary=boundary, points=points, **kwargs)

    def to_html(self, path, color_by: str = "random", title: str | None = None, points=None, labels=None,
                class_names=None):
        """Write an interactive, self-contained HTML viewer; see :func:`splinecam.viz.viewer.to_html`."""
        return late("viz.viewer.to_html")(self, path, color_by=color_by, title=title, points=points, labels=labels,
                                          class_names=class_names)

    # -- topology and exports (each forwards to the function named) ----------------

    @cached_property
    def _mesh(self) -> PlanarMesh:
        return late("analysis.mesh.build_mesh")(self)

    def mesh(self) -> PlanarMesh:
        """The regions as a planar mesh (shared vertices, whole shared edges, half-edges); see
        :class:`splinecam.analysis.mesh.PlanarMesh`.  Computed once, then cached."""
        return self._mesh

    def adjacency(self):
        """(R, R) symmetric ``scipy.sparse`` matrix: the length of the edges two regions share."""
        return self.mesh().adjacency()

    def to_networkx(self):
        """The region adjacency graph; see :func:`splinecam.analysis.topology.to_networkx`."""
        return late("analysis.topology.to_networkx")(self)

    def class_regions(self, output: int | None = None, level: float | None = None) -> dict:
        """{class: ClassRegion}, where each class wins; see :func:`splinecam.analysis.topology.class_regions`."""
        return late("analysis.topology.class_regions")(self, output=output, level=level)

    def to_svg(self, path, boundary: bool = True) -> None:
        """Write regions, boundary and each layer's edges as SVG groups; see :func:`splinecam.io.svg.to_svg`."""
        return late("io.svg.to_svg")(self, path, boundary=boundary)

    def to_geojson(self) -> dict:
        """The regions as a GeoJSON FeatureCollection; see :func:`splinecam.io.geojson.partition_geojson`."""
        return late("io.geojson.partition_geojson")(self)

    # -- save / load ------------------------------------------------------------

    def save(self, path) -> None:
        """Write an ``.npz`` file (arrays and JSON only: loading runs no code).

        path: a file name (``.npz`` is added if it has another suffix, as numpy
        does) or an open binary file.  A named file is written under a temporary
        name in the same folder, then renamed: an interrupted save never leaves
        a partial file at ``path``.
        """
        sl, a = self.slice, self.arrays
        meta = {
            "format": FORMAT, "version": __version__, "seconds": self.seconds, "complete": self.complete,
            "layers": [asdict(layer) for layer in self.layers], "input_shape": list(sl.input_shape),
        }
        arrays = dict(
            verts=a.vertices, offsets=a.offsets, labels=a.edge_units, affine=a.affine,
            centroid_outputs=a.centroid_outputs, codes=a.packed_codes, exact=self.exact, origin=sl.origin, basis=sl.basis,
            polygon=sl.polygon, anchors_uv=np.zeros((0, 2)) if sl.anchors_uv is None else sl.anchors_uv,
        )
        save_arrays(path, arrays, meta)

    @classmethod
    def load(cls, path) -> "Partition":
        """Read a file (a path or an open binary file) written by :meth:`save`; the partition
        has no model (pass one to ``verify``).

        Raises FileNotFoundError if there is none, and ``ValueError`` saying why
        if the file is not a valid splinecam partition (truncated, another
        program's, arrays missing or inconsistent, NaN vertices).
        """
        meta, f = read_arrays(path)
        anchors = f["anchors_uv"]
        try:
            sl = Slice(f["origin"], f["basis"], f["polygon"], anchors_uv=anchors if len(anchors) else None)
        except ValueError as err:
            raise InvalidPartitionFile(f"{path} is not a valid splinecam partition: its slice is invalid ({err})") from None
        arrays = RegionArrays(f["verts"], f["offsets"].astype(np.int64), f["labels"], f["affine"], f["codes"],
                              f["centroid_outputs"])
        return cls(arrays, sl, [LayerInfo(**layer) for layer in meta["layers"]], seconds=meta["seconds"],
                   complete=meta.get("complete", True), exact=f.get("exact"))

    # -- notebooks and tables -----------------------------------------------------

    def to_frame(self):
        """A pandas DataFrame, one row per region; see :func:`splinecam.viz.frame.region_frame`."""
        return late("viz.frame.region_frame")(self)

    def show(self, interactive: bool | None = None, max_regions: int | None = None, height: int = 520,
             color_by: str = "random"):
        """Inline notebook display with explicit choices; see :func:`splinecam.viz.notebook.show`."""
        return late("viz.notebook.show")(self, interactive=interactive, max_regions=max_regions, height=height, color_by=color_by)

    def _repr_html_(self) -> str:
        return late("viz.notebook.partition_html")(self)


class CurvedPartition(Partition):
    """The certified partition of a slice for a model whose first op is a sine encoding (see
    :mod:`splinecam.run.curved` for what is proven).

    Its rows are convex *pieces* of the curved regions: cells of the certificate's quadtree,
    strips of them on one side of a boundary polyline, or triangles of a junction cell's faces.  ``region`` (P,) is each piece's region
    (-1: an uncertified cell that joins no region with a certified piece) and ``n_regions`` their
    number; region boundaries are polylines within ``tolerance`` of the
    true curves; ``certified`` (P,) is False for pieces that are uncertified cells (listed in
    ``uncertified`` (C, 4) as (u0, v0, u1, v1), each with its reason in ``uncertified_reasons``);
    ``pending`` (Q, 4) the cells a limit left.  ``evaluate`` is exact (the output is affine in
    the encoding on each region); ``affine`` holds each piece's tangent map at its centroid (the
    output is not affine in ``uv``).  With one
    output (or two) the decision boundary is certified like the region boundaries
    (``decision_boundary()``); ``side`` (P,) says which side of it each piece is on; with one,
    ``level_set(t)`` certifies ``f = t`` (a second certificate run, :meth:`at_level`).  Class
    cells and class regions are the pieces on each side of the certified decision function;
    ``save`` and :meth:`load` keep all of it in a ``splinecam.curved/1`` file.
    """

    curved = True

    def __init__(self, pieces: CurvedPieces, sl: Slice, net: SineNet, tolerance: float, seconds: float, network,
                 complete: bool = True):
        self.pieces, self.net, self.tolerance = pieces, net, float(tolerance)
        cen = vertex_means(pieces.vertices, pieces.offsets)
        codes = [np.packbits(part, axis=1) for part in np.split(pieces.bits, np.cumsum(
            [layer.bits for layer in net.layers])[:-1], axis=1)] if net.layers else []
        packed = np.concatenate(codes, 1) if codes else np.zeros((len(cen), 0), np.uint8)
        out, grad = self._outputs(cen, pieces.bits)
        affine = np.concatenate([grad, (out - np.einsum("pki,pi->pk", grad, cen))[..., None]], -1)
        arrays = RegionArrays(pieces.vertices, pieces.offsets, pieces.edge_units, affine, packed, out)
        super().__init__(arrays, sl, net.layers, seconds=seconds, complete=complete, network=network)

    def _outputs(self, uv: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, K) outputs and (N, K, 2) their uv-gradients at points ``uv`` (N, 2) on patterns ``bits``."""
        waves = self.net.waves
        out = self.net.outputs(waves.features(uv), bits)
        if not len(uv):
            return out, np.zeros((0, out.shape[1], 2))
        # d/dp of an output that is affine in e: the map's own derivative, by exact chain rule
        slopes = waves.slopes(uv)
        zero = self.net.outputs(np.zeros_like(slopes), bits)
        grad = np.stack([self.net.outputs(slopes * waves.A[:, i], bits) - zero for i in (0, 1)], -1)
        return out, grad

    @property
    def region(self) -> np.ndarray:
        """(P,) the region of each piece."""
        return self.pieces.region

    @property
    def n_regions(self) -> int:
        """The number of regions (connected sets of one activation pattern)."""
        return int(self.pieces.region.max()) + 1 if len(self.pieces.region) else 0

    @property
    def certified(self) -> np.ndarray:
        return self.pieces.certified

    @property
    def uncertified(self) -> np.ndarray:
        return self.pieces.uncertified

    @property
    def uncertified_reasons(self) -> list[str]:
        """(C,) why each uncertified cell is (see :data:`splinecam.run.curved.UNCERTIFIED`)."""
        return [UNCERTIFIED[k] for k in self.pieces.reasons]

    @property
    def side(self) -> np.ndarray:
        return self.pieces.side

    def __repr__(self) -> str:
        partial = "" if self.complete else f", partial: {self.area_fraction:.1%} of the slice"
        return (f"CurvedPartition({self.n_regions:,} regions in {len(self):,} pieces, tolerance {self.tolerance:.3g}, "
                f"{len(self.uncertified):,} uncertified cells, {self.seconds:.2f} s{partial})")

    def evaluate(self, uv) -> np.ndarray:
        """(N, K) network output, exactly (each region's map is affine in the encoding); NaN outside."""
        uv = as_points(uv)
        idx = self.locate(uv)
        out = self._outputs(uv, self.pieces.bits[np.maximum(idx, 0)])[0] if len(self) else np.full((len(uv), 1), np.nan)
        out[idx < 0] = np.nan
        return out

    @cached_property
    def _decision_boundary(self) -> Boundary:
        if self.net.decision is None:
            raise ValueError(f"the decision boundary of a curved partition is certified for 1 or 2 outputs; this "
                             f"model has {self.n_outputs}.")
        a, o = self.arrays, self.arrays.offsets
        piece = np.repeat(np.arange(len(self)), np.diff(o))
        nxt = np.arange(len(a.vertices)) + 1
        nxt[o[1:] - 1] = o[:-1]
        on = (a.edge_units[:, 0] == DECISION) & ~self.side[piece]  # each segment once: from its negative side
        segments = np.stack([a.vertices[on], a.vertices[nxt[on]]], 1)
        classes = np.tile([0, max(self.n_outputs - 1, 0)], (len(segments), 1))
        return late("analysis.boundary.Boundary")(segments, piece[on], classes, partition=self)

    def at_level(self, value: float, timeout: float | None = None) -> "CurvedPartition":
        """The certified partition of a one-output model with ``out - value`` as its decision
        function (this partition itself where that is its own): its decision boundary is the level
        set ``out = value``, its ``side`` and class cells (``f > value``) are those of that level.
        Another value runs the certificate again over the slice (as costly as the partition;
        ``timeout`` as in :func:`partition`)."""
        if self.n_outputs != 1:
            raise ValueError(f"a curved partition certifies level sets of a one-output model only; this model has "
                             f"{self.n_outputs} outputs.")
        if float(value) == self.net.decision[1]:
            return self
        net = replace(self.net, decision=(self.net.decision[0], float(value)))
        options = Options(tol=self.tolerance, timeout=timeout)
        return partition_curved(None, self.slice, False, options, time.perf_counter(), net, self._prepared())

    def level_set(self, value: float, output: int = 0, timeout: float | None = None) -> Boundary:
        """The certified level set ``output == value`` of a one-output model, as polylines within
        ``tolerance`` like the region boundaries: the decision boundary of :meth:`at_level` (for
        ``value`` 0 this partition's own; else a second certificate run).  Its segments' pieces
        are those of that run (``boundary.partition``)."""
        if output != 0:
            raise ValueError(f"a curved partition certifies level sets of a one-output model only; this model has "
                             f"{self.n_outputs} outputs (output={output}).")
        return self.at_level(value, timeout).decision_boundary()

    def stats(self) -> dict:
        """:func:`splinecam.analysis.stats.stats` of the pieces, with the numbers of the regions:
        ``n_regions`` and the ``area_*`` entries are of the regions (unions of pieces), and
        ``n_pieces``, ``n_uncertified`` (cells) and ``tolerance`` are added."""
        out = super().stats()
        known = self.region >= 0
        areas = np.bincount(self.region[known], self.areas[known], self.n_regions) if known.any() else np.zeros(1)
        out.update(n_regions=self.n_regions, n_pieces=len(self), n_uncertified=len(self.uncertified),
                   tolerance=self.tolerance, area_mean=float(areas.mean()), area_std=float(areas.std()),
                   area_min=float(areas.min()), area_max=float(areas.max()), area_median=float(np.median(areas)))
        return out

    def verify(self, n_points: int | None = None, seed: int = 0, model=None, tol: float | None = None):
        """Check by sampling against a float64 copy of the model; see
        :func:`splinecam.analysis.sampling.verify_curved`."""
        return late("analysis.sampling.verify_curved")(self, n_points=n_points, seed=seed, model=model, tol=tol)

    def save(self, path) -> None:
        """Write an ``.npz`` file (arrays and JSON only: loading runs no code), atomically as
        :meth:`Partition.save`: the pieces, their patterns, sides, regions and certificate flags,
        the uncertified and pending cells, the slice, and the network as the certificate read it
        (the encoding's waves on the slice, every layer's weights), so that the loaded partition
        evaluates exactly and certifies level sets without the model."""
        sl, p = self.slice, self.pieces
        net_arrays, net_meta = self.net.flat()
        meta = {"format": CURVED_FILE.format, "version": __version__, "seconds": self.seconds,
                "complete": self.complete, "tolerance": self.tolerance, "layers": [asdict(x) for x in self.layers],
                "input_shape": list(sl.input_shape), **net_meta}
        arrays = dict(verts=p.vertices, offsets=p.offsets, labels=p.edge_units, bits=p.bits, side=p.side,
                      certified=p.certified, region=p.region, uncertified=p.uncertified, pending=p.pending,
                      reasons=p.reasons,
                      origin=sl.origin, basis=sl.basis, polygon=sl.polygon,
                      anchors_uv=np.zeros((0, 2)) if sl.anchors_uv is None else sl.anchors_uv, **net_arrays)
        save_arrays(path, arrays, meta)

    @classmethod
    def load(cls, path) -> "CurvedPartition":
        """Read a file (a path or an open binary file) written by :meth:`save`: a CurvedPartition
        with its ``curved``, ``tolerance`` and ``uncertified``, and no model (pass one to
        ``verify``).  Raises FileNotFoundError if there is none, and
        :class:`~splinecam.InvalidPartitionFile` saying why for a file that is not one."""
        meta, f = read_arrays(path, CURVED_FILE)
        anchors = f["anchors_uv"]
        layers = [LayerInfo(**layer) for layer in meta["layers"]]
        try:
            sl = Slice(f["origin"], f["basis"], f["polygon"], anchors_uv=anchors if len(anchors) else None)
            net = SineNet.from_flat(f, meta, [x.name for x in layers], [x.units for x in layers])
            if np.any(f["reasons"] >= len(UNCERTIFIED)):
                raise ValueError(f"its 'reasons' hold codes beyond the {len(UNCERTIFIED)} known")
        except ValueError as err:
            raise InvalidPartitionFile(f"{path} is not a valid splinecam curved partition: {err}.") from None
        pieces = CurvedPieces(f["verts"], f["offsets"].astype(np.int64), f["labels"].astype(np.int64), f["bits"],
                              f["side"], f["certified"], f["region"].astype(np.int64), f["uncertified"], f["pending"],
                              f["reasons"].astype(np.int64))
        return cls(pieces, sl, net, meta["tolerance"], meta["seconds"], (None, None), complete=meta["complete"])
