"""The exact pieces of a network along a path (:class:`~splinecam.Path`): ``partition_path``
(what :func:`splinecam.partition` runs on a path) and the :class:`PathPartition` result with
its queries, analysis methods and save/load.

Each leg of the path is one run of the same engine and plan as a slice (its cells are
:class:`~splinecam.geometry.Intervals`, or :class:`~splinecam.geometry.Arcs` on an ellipse),
under one watch: the same ops, limits (``.partial``), progress and Ctrl-C.  A plain MLP (see
:mod:`splinecam.run.chain`) on a polyline takes the compiled chain kernel instead
(:mod:`splinecam.run.chain1d`: all legs at once, the same pieces, under the same limits).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

import numpy as np
import torch

from ._version import __version__
from .errors import InvalidPartitionFile, StoppedEarly, UnsupportedModelError
from .extras import late
from .io.files import PATH_FILE, read_arrays, save_arrays
from .partition import NetworkCopy, check_shapes, checked_arguments, region_limit
from .paths import Path, PathSet
from .geometry import compiled1d
from .run.chain import ChainRun, cached_chain, chain_applies
from .run.chain1d import PathChain, path_chain
from .run.engine import Engine
from .run.pieces import PieceArrays
from .run.plan import DEFAULT_MEMORY, Plan
from .run.regions import LayerInfo, code_width, unpack_codes
from .run.trace import frozen, prepare
from .run.watch import Watch

__all__ = ["PathPartition", "partition_path"]

if TYPE_CHECKING:  # the analysis layer sits above this module: its types only
    from .analysis.paths import PathCrossings
    from .analysis.sampling import VerifyReport


def partition_path(model, path: Path, dtype=torch.float64, device=None, progress=None, *,
                   max_regions: int | None = None, max_memory=DEFAULT_MEMORY, chunk_size: int | None = None,
                   rtol: float = 1e-10, timeout: float | None = None, tiles=None, executor=None) -> "PathPartition":
    """The exact pieces of ``model`` along ``path``: :func:`splinecam.partition` on a path (the
    same arguments; ``tiles`` and ``executor`` are for slices).  The legs are run one after
    the other under one progress bar, time limit and region limit; a limit's ``.partial`` is a
    :class:`PathPartition` of the pieces finished (``complete`` False)."""
    started = time.perf_counter()
    if tiles is not None or executor is not None:
        raise ValueError("tiles and executor split a slice; a path runs in this process: leave them out.")
    limits = dict(max_regions=max_regions, max_memory=max_memory, chunk_size=chunk_size, rtol=rtol, timeout=timeout)
    options, device = checked_arguments(model, path, device, limits, "partition", Path)
    kernel = _kernel(model, [path], dtype, device, options)
    if kernel is not None:
        try:
            return _run_chain(*kernel, [path], progress, options, started)[0]
        except StoppedEarly as err:
            err.partial = err.partial[0]
            raise
    legs = path.legs()
    chain = cached_chain(model, legs[0][1]) if chain_applies(dtype, device) else None
    if chain is not None:
        graph, shapes = chain.graph(path.input_shape[0])
        network, runner = frozen(model, torch.float64, "cpu", path.input_shape), ChainRun
    else:
        twin, graph = prepare(model, dtype, device, path.input_shape)
        shapes = check_shapes(twin, graph, legs[0][1], dtype, device)
        network, runner = (twin, graph), Engine
    straight = path.kind == "polyline"
    flat = [node.name for node in graph.nodes if node.op.splits and not (node.op.any_cells or straight and node.op.intervals)]
    if flat:
        where = ("on an ellipse, splinecam splits elementwise piecewise-linear ops (ReLU, LeakyReLU, clamp, abs, ...) "
                 f"only; the op(s) {', '.join(flat)} split straight legs (a polyline) and slices" if not straight else
                 f"on a path, splinecam cannot split the op(s) {', '.join(flat)}; they split slices only")
        raise UnsupportedModelError(f"{where}. Partition a polyline through the points or a slice through the path instead.")
    budget = options.budget
    plans = [(start, Plan.make(graph, shapes, leg, dtype, device, options.rtol, budget,
                               options.chunk_size)) for start, leg in legs]
    layers = list(plans[0][1].layers.values())
    max_regions, note = region_limit(options.max_regions, plans[0][1].region_bytes(), plans[0][1].budget)
    watch = Watch(path, progress, max_regions, options.timeout, started, note)
    watch.keep_open = True
    parts: list[tuple[float, PieceArrays]] = []
    try:
        for start, plan in plans:
            run = runner(plan)
            try:
                parts.append((start, run.run(watch).regions))
            except StoppedEarly as err:
                parts.append((start, run.finished_regions()))
                err.partial = PathPartition.of_legs(parts, path, layers, watch.elapsed(), network, complete=False)
                raise
    finally:
        watch.keep_open = False
        watch.close()
    return PathPartition.of_legs(parts, path, layers, watch.elapsed(), network)


def partition_paths(model, paths: list[Path], dtype=torch.float64, device=None, progress=None,
                    **keywords) -> "list[PathPartition] | None":
    """The pieces of a plain MLP ``model`` along each of ``paths`` in one run of the compiled
    chain kernel: what :func:`splinecam.partition_many` runs for them, the same pieces as
    :func:`splinecam.partition` of each (``keywords``: its keywords), without the cost of a call
    per path.  None where that run does not apply (another model, an ellipse, inputs of
    several shapes, a limit that is set: ``max_regions`` and ``timeout`` bound each partition,
    so each path is its own run then; ``tiles``).  One progress bar over all of them; a region
    limit (by default what half the available memory holds, of all the paths' pieces) raises
    with ``.partial``: the list of their partitions so far (``complete`` False for those not
    finished)."""
    started = time.perf_counter()
    if any(keywords.get(name) is not None for name in ("max_regions", "timeout", "tiles")):
        return None
    limits = {name: value for name, value in keywords.items() if name != "tiles"}  # (compose, tol: for slices)
    options, device = checked_arguments(model, paths[0], device, limits, "partition_many", Path)
    kernel = _kernel(model, paths, dtype, device, options)
    return None if kernel is None else _run_chain(*kernel, paths, progress, options, started)


def _kernel(model, paths: list[Path], dtype, device, options) -> "tuple[PathChain, object] | None":
    """The chain kernel's reading of ``model`` and the partitions' network (see
    :class:`NetworkCopy`) where the kernel runs ``paths``: a plain MLP, in float64 on the CPU,
    on polylines through inputs of one shape, with the kernel's stack within ``max_memory``."""
    shape = paths[0].input_shape
    if not (compiled1d.AVAILABLE and chain_applies(dtype, device) and paths[0].kind == "polyline"
            and (len(paths) == 1 or all(p.kind == "polyline" and p.input_shape == shape for p in paths))):
        return None
    chain = cached_chain(model, paths[0])
    fast = path_chain(chain, shape[0]) if chain is not None else None
    if fast is None or fast.stack_bytes > options.budget:
        return None
    return fast, frozen(model, torch.float64, "cpu", shape, chain.state)


def _run_chain(fast: PathChain, network, paths: list[Path], progress, options, started: float) -> "list[PathPartition]":
    """The partitions of ``paths`` (polylines) in one run of the compiled chain kernel
    (:mod:`splinecam.run.chain1d`), under the limits of ``options``.  A limit's ``.partial``:
    the list of the paths' partitions so far."""
    domain = paths[0] if len(paths) == 1 else PathSet(paths)
    max_regions, note = region_limit(options.max_regions, fast.region_bytes, options.budget)
    watch = Watch(domain, progress, max_regions, options.timeout, started, note)
    first, origin, step, starts = _legs(paths)
    finished: list = []
    try:
        fast.run(origin, step, starts, options.rtol, watch, finished)
    except StoppedEarly as err:
        err.partial = _split(fast, paths, first, fast.pieces(finished), watch.elapsed(), network, stopped=True)
        raise
    finally:
        watch.close()
    return _split(fast, paths, first, fast.pieces(finished), watch.elapsed(), network, stopped=False)


def _legs(paths: list[Path]) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """The legs of the polylines ``paths`` in one list: each path's first leg, and the end
    (P + 1,); the legs' origins and steps (L, D) (contiguous: one layout, one compiled kernel);
    their starts (L,) in their path's t."""
    if len(paths) == 1:  # (a path's partition is made per call: the short way)
        flat = paths[0].points.reshape(len(paths[0].points), -1)
        n = len(flat) - 1
        return [0, n], np.ascontiguousarray(flat[:-1]), flat[1:] - flat[:-1], np.arange(n, dtype=np.float64)
    flat = [p.points.reshape(len(p.points), -1) for p in paths]
    first = list(itertools.accumulate((len(f) - 1 for f in flat), initial=0))
    starts = np.arange(first[-1], dtype=np.float64) - np.repeat(first[:-1], np.diff(first))
    return first, np.concatenate([f[:-1] for f in flat]), np.concatenate([f[1:] - f[:-1] for f in flat]), starts


def _split(fast: PathChain, paths: list[Path], first, pieces: tuple, seconds: float, network,
           stopped: bool) -> "list[PathPartition]":
    """The pieces (in order along the legs of all ``paths``, legs numbered from path 0 on;
    ``first`` (P + 1,): each path's first leg, and the end) as one :class:`PathPartition` per
    path.  Where a limit ``stopped`` the run, the pieces finished are those of a prefix of the
    legs: a path is complete if its last piece ends at its end."""
    lo, hi, affine, middle, codes, ends, leg = pieces
    if len(paths) == 1 and not stopped:
        return [PathPartition(paths[0], *pieces, fast.layers, seconds, network)]
    at = np.searchsorted(leg, first)
    out = []
    for i, path in enumerate(paths):
        a, b = at[i], at[i + 1]
        complete = not stopped or (b > a and leg[b - 1] == first[i + 1] - 1 and hi[b - 1] == path.t_range[1])
        out.append(PathPartition(path, lo[a:b], hi[a:b], affine[a:b], middle[a:b], codes[a:b], ends[a:b],
                                 leg[a:b] - first[i], fast.layers, seconds, network, complete=complete))
    return out


class PathPartition(NetworkCopy):
    """The linear pieces of a network along a path, in order of the path parameter t.

    lo, hi: (n,) the pieces' parameter ranges (``t`` (n + 1,) their breakpoints, for a complete
    partition); affine: (n, K, F) the output on each piece in the path's features of t
    (:meth:`features`: ``(t, 1)`` on a polyline, ``(cos s, sin s, 1)`` on an ellipse);
    centroid_outputs: (n, K) the outputs at the pieces' midpoints; packed_codes: (n, B)
    activation codes (:attr:`codes` unpacks them); ends: (n, 2, 2) the (layer, unit) that made
    each piece's low and high end ((-1, -1) at the path's ends and at the joints of its legs);
    leg: (n,) the leg of each piece.  ``complete`` is False for the partial result of a run a
    limit stopped: its pieces are exact but do not cover the path.
    """

    def __init__(self, path: Path, lo, hi, affine, centroid_outputs, packed_codes, ends, leg, layers: list[LayerInfo],
                 seconds: float = 0.0, network=None, complete: bool = True):
        self.path, self.layers, self.seconds, self.complete = path, list(layers), seconds, bool(complete)
        self.lo, self.hi, self.affine = np.asarray(lo, np.float64), np.asarray(hi, np.float64), np.asarray(affine)
        self.centroid_outputs, self.packed_codes = np.asarray(centroid_outputs), np.asarray(packed_codes)
        self.ends, self.leg = np.asarray(ends, np.int64), np.asarray(leg, np.int64)
        self._network = (None, None) if network is None else network

    @classmethod
    def of_legs(cls, parts: list[tuple[float, PieceArrays]], path: Path, layers, seconds, network,
                complete: bool = True) -> "PathPartition":
        """The pieces of the legs' runs ``parts`` (start of the leg in t, its pieces in the
        leg's own coordinate), in order along the path."""
        if not parts:
            k, f = 0, 3 if path.kind == "ellipse" else 2
            empty = PieceArrays(np.zeros(0), np.zeros(0), np.zeros((0, 2, 2), np.int64), np.zeros((0, k, f)),
                                np.zeros((0, code_width(layers)), np.uint8), np.zeros((0, k)))
            return cls.of_pieces(empty, np.zeros(0, np.int64), np.zeros(0), path, layers, seconds, network, complete)
        ordered = [p if np.all(p.lo[1:] >= p.lo[:-1]) else p.select(np.argsort(p.lo, kind="stable")) for _, p in parts]
        leg = np.repeat(np.arange(len(parts)), [len(p) for p in ordered])
        return cls.of_pieces(PieceArrays.concat(ordered), leg, np.array([start for start, _ in parts]), path, layers,
                             seconds, network, complete)

    @classmethod
    def of_pieces(cls, pieces: PieceArrays, leg, starts, path: Path, layers, seconds, network,
                  complete: bool = True) -> "PathPartition":
        """The pieces ``pieces`` (n,) of the legs ``leg`` (n,) (in order along the path, each in
        its leg's own coordinate), the legs starting at ``starts`` in t."""
        start = np.asarray(starts, np.float64)[leg]
        a = pieces.affine
        if path.kind == "polyline":  # the leg's a * (t - start) + c
            a = np.stack([a[..., 0], a[..., 1] - a[..., 0] * start[:, None]], -1)
        return cls(path, pieces.lo + start, pieces.hi + start, a, pieces.centroid_outputs, pieces.packed_codes,
                   pieces.ends, leg, layers, seconds, network, complete)

    # -- the pieces ----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.lo)

    def __repr__(self) -> str:
        partial = "" if self.complete else ", partial"
        return f"PathPartition({len(self):,} pieces, {self.n_outputs} outputs, {self.seconds:.2f} s{partial})"

    @property
    def n_outputs(self) -> int:
        """K, the number of network outputs."""
        return self.affine.shape[1]

    @property
    def t(self) -> np.ndarray:
        """(n + 1,) the breakpoints of a complete partition: piece i is ``[t[i], t[i + 1]]``."""
        return np.append(self.lo, self.hi[-1:])

    @property
    def lengths(self) -> np.ndarray:
        """(n,) the pieces' lengths in t."""
        return self.hi - self.lo

    @property
    def edge_units(self) -> np.ndarray:
        """(n + 1, 2) the (layer, unit) that made each breakpoint of :attr:`t` ((-1, -1) at the
        path's ends and at the joints of its legs)."""
        return np.concatenate([self.ends[:, 0], self.ends[-1:, 1]]) if len(self) else np.zeros((0, 2), np.int64)

    @property
    def codes(self) -> np.ndarray:
        """(n, n_bits) bool activation pattern of each piece, layer after layer."""
        return self.codes_of(np.arange(len(self)))

    def codes_of(self, pieces) -> np.ndarray:
        """(m, n_bits) bool activation patterns of the pieces ``pieces`` (m,)."""
        return unpack_codes(self.packed_codes[pieces], self.layers)

    def features(self, t) -> np.ndarray:
        """(m, F) the features of the parameters t (m,) that :attr:`affine` multiplies."""
        t = np.asarray(t, np.float64).reshape(-1)
        if self.path.kind == "ellipse":
            return np.stack([np.cos(t), np.sin(t), np.ones_like(t)], 1)
        return np.stack([t, np.ones_like(t)], 1)

    def locate(self, t) -> np.ndarray:
        """(m,) the piece that holds each parameter t (m,) (the lower one at a breakpoint), -1
        where none does."""
        t = np.asarray(t, np.float64).reshape(-1)
        idx = np.searchsorted(self.hi, t, side="left")
        inside = (idx < len(self)) & (self.lo[np.minimum(idx, len(self) - 1)] <= t) if len(self) else idx < 0
        return np.where(inside, idx, -1)

    def evaluate(self, t) -> np.ndarray:
        """(m, K) the outputs at the parameters t (m,) through the piece maps (taken about each
        piece's midpoint); NaN where no piece holds t."""
        t = np.asarray(t, np.float64).reshape(-1)
        idx = self.locate(t)
        r = np.maximum(idx, 0)
        mid = (self.lo[r] + self.hi[r]) / 2
        d = (self.features(t) - self.features(mid))[:, :-1]  # (m, F - 1)
        out = self.centroid_outputs[r] + np.einsum("mkf,mf->mk", self.affine[r, :, :-1], d)
        out[idx < 0] = np.nan
        return out

    def to_input(self, t, dtype=torch.float64) -> torch.Tensor:
        """The inputs (m, *input_shape) at the parameters t (m,) (see :meth:`Path.to_input`)."""
        return self.path.to_input(t, dtype)

    # -- analysis (each forwards to the function of the same name) --------------------

    def verify(self, n_points: int | None = None, seed: int = 0, model=None, tol: float | None = None) -> VerifyReport:
        """Check against the float64 model; see :func:`splinecam.analysis.paths.verify_path`."""
        return late("analysis.paths.verify_path")(self, n_points=n_points, seed=seed, model=model, tol=tol)

    def decision_boundary(self) -> PathCrossings:
        """Where the path crosses the decision boundary, exactly; see
        :func:`splinecam.analysis.paths.path_crossings`."""
        return late("analysis.paths.path_crossings")(self)

    def level_set(self, value: float, output: int = 0) -> PathCrossings:
        """Where output ``output`` crosses ``value``; see :func:`splinecam.analysis.paths.path_crossings`."""
        return late("analysis.paths.path_crossings")(self, level=value, output=output)

    def transitions(self) -> dict[str, int]:
        """{layer name: how often that layer's activation pattern changes along the path}; see
        :func:`splinecam.analysis.paths.transitions`."""
        return late("analysis.paths.transitions")(self)

    def plot(self, ax=None, outputs=None, breakpoints: bool = True, boundary: bool = True, **kwargs):
        """The outputs along the path with the breakpoints marked; see :func:`splinecam.viz.paths.plot_path`."""
        return late("viz.paths.plot_path")(self, ax=ax, outputs=outputs, breakpoints=breakpoints, boundary=boundary,
                                           **kwargs)

    # -- save / load ----------------------------------------------------------------

    def save(self, path) -> None:
        """Write an ``.npz`` file (arrays and JSON only), atomically as :meth:`Partition.save`."""
        p = self.path
        meta = {"format": PATH_FILE.format, "version": __version__, "seconds": self.seconds, "complete": self.complete,
                "layers": [asdict(layer) for layer in self.layers], "input_shape": list(p.input_shape),
                "kind": p.kind, "closed": p.closed}
        arrays = dict(lo=self.lo, hi=self.hi, affine=self.affine, centroid_outputs=self.centroid_outputs,
                      codes=self.packed_codes, ends=self.ends, leg=self.leg, points=p.points)
        save_arrays(path, arrays, meta)

    @classmethod
    def load(cls, path) -> "PathPartition":
        """Read a file written by :meth:`save` (no model: pass one to ``verify``); raises
        :class:`~splinecam.InvalidPartitionFile` saying why for a file that is not one."""
        meta, f = read_arrays(path, PATH_FILE)
        points = f["points"][:-1] if meta["closed"] else f["points"]
        try:
            p = Path(points, kind=meta["kind"], closed=meta["closed"])
        except ValueError as err:
            raise InvalidPartitionFile(f"{path} is not a valid splinecam path partition: its path is invalid ({err})") from None
        return cls(p, f["lo"], f["hi"], f["affine"], f["centroid_outputs"], f["codes"], f["ends"], f["leg"],
                   [LayerInfo(**layer) for layer in meta["layers"]], seconds=meta["seconds"], complete=meta["complete"])

