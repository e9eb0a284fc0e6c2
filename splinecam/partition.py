"""The ``Partition`` result: regions, their affine maps, queries, save/load."""

from __future__ import annotations

import json
import re
from functools import cached_property

import numpy as np
import torch

from . import __version__
from .engine import Engine, EngineResult, LayerInfo
from .polygons import polygon_areas
from .slices import Slice, as_points
from .trace import prepare

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_bytes(size) -> int:
    """``4e9``, ``"4GB"``, ``"512MiB"`` -> bytes."""
    if isinstance(size, (int, float)):
        return int(size)
    match = re.fullmatch(r"([0-9.]+(?:E[0-9]+)?)([KMG]I?B|B)?", str(size).strip().upper().replace(" ", ""))
    if match is None:
        raise ValueError(f"cannot read memory size {size!r}; write e.g. '4GB' or '512MiB'.")
    return int(float(match[1]) * _UNITS[match[2] or ""])


def _segment_reduce(values: np.ndarray, offsets: np.ndarray, ufunc) -> np.ndarray:
    return ufunc.reduceat(values, offsets[:-1], axis=0)


def partition(model, sl: Slice, dtype=torch.float64, device=None, progress=None, *,
              max_regions: int = 5_000_000, max_memory="128MB", chunk_size: int | None = None,
              rtol: float = 1e-10, tiles=None, executor=None) -> "Partition":
    """Exact partition of the slice ``sl`` into the linear regions of ``model``.

    model: a torch module of supported ops (the user's model is not modified);
    dtype: float64 unless you know better; device: where to compute (default
    the model's); progress: None shows a bar after 2 s, True always, False
    never; max_regions: raise :class:`RegionLimitError` beyond it; max_memory
    or chunk_size: bound on the regions processed at once; rtol: relative
    tolerance for "a vertex lies on a line".  tiles: k (a k x k grid over the slice
    polygon's bounding box, cells clipped to it) or (ku, kv): partition the tiles and merge
    them into the same partition; executor: where the tiles (or the one slice) run: None (here),
    "local" (a Dask LocalCluster started for the call), a dask.distributed.Client or a
    concurrent.futures.Executor (see :mod:`splinecam.distributed`).
    """
    if not isinstance(sl, Slice):
        raise TypeError(f"sl must be a splinecam.Slice, got {type(sl).__name__}.")
    _check_options(max_regions, chunk_size, rtol)
    if tiles is not None or executor is not None:
        from .tiles import partition_tiled

        return partition_tiled(model, sl, tiles, executor, dtype, device, progress, max_regions=max_regions,
                               max_memory=max_memory, chunk_size=chunk_size, rtol=rtol)
    device = default_device(model) if device is None else device
    twin, graph = prepare(model, dtype, device, sl.input_shape)
    return partition_graph(twin, graph, sl, dtype, device, progress, max_regions, max_memory, chunk_size, rtol)


def _check_options(max_regions, chunk_size, rtol) -> None:
    if not (isinstance(max_regions, int) and max_regions >= 1):
        raise ValueError(f"max_regions must be a positive integer, got {max_regions!r}.")
    if chunk_size is not None and not (isinstance(chunk_size, int) and chunk_size >= 1):
        raise ValueError(f"chunk_size must be a positive integer (or None to use max_memory), got {chunk_size!r}.")
    if not 0 <= rtol < 1e-3:
        raise ValueError(f"rtol must be a small non-negative tolerance (default 1e-10), got {rtol!r}.")


def default_device(model) -> torch.device:
    """The device of the model's first parameter (CPU without parameters)."""
    first = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return first.device if first is not None else torch.device("cpu")


def partition_graph(twin, graph, sl: Slice, dtype, device, progress, max_regions: int, max_memory,
                    chunk_size: int | None, rtol: float) -> "Partition":
    """:func:`partition` of a prepared model copy ``twin`` whose traced graph is ``graph``."""
    sizes = _check_shapes(twin, graph, sl, dtype, device)
    if chunk_size is None:
        chunk_size = max(16, parse_bytes(max_memory) // _bytes_per_region(graph, sizes, dtype))
    engine = Engine(graph, sl, dtype, device, rtol, max_regions, chunk_size, progress)
    result = engine.run()
    return Partition(result, sl, model=twin, graph=graph)


def _bytes_per_region(graph, sizes: list[int], dtype) -> int:
    """Memory one region costs at the worst node: its live states (3 rows each), plus the
    inputs and outputs of the node being run and the per-unit work of a split (about 8 rows)."""
    last_use = {a: i for i, node in enumerate(graph.nodes) for a in node.args}
    worst = sizes[0]
    for i, node in enumerate(graph.nodes):
        live = sum(sizes[v] for v in range(i + 1) if last_use.get(v, -1) >= i)
        worst = max(worst, 3 * (live + sizes[i + 1]) + 8 * max(sizes[a] for a in node.args))
    return worst * torch.finfo(dtype).bits // 8


def _check_shapes(twin, graph, sl: Slice, dtype, device) -> list[int]:
    """Run the copy once at the slice origin; return the per-sample size of every graph value."""
    x = torch.as_tensor(sl.origin, dtype=dtype, device=device)[None]
    try:
        with torch.no_grad():
            expected = twin(x)
            got, sizes = graph.forward(x, sizes=True)
    except RuntimeError as err:
        raise ValueError(
            f"the model cannot run on inputs of the slice's shape {tuple(sl.input_shape)} "
            f"(a batch of them has shape (N, {', '.join(map(str, sl.input_shape))})): {err}"
        ) from None
    rtol = 1e-9 if dtype == torch.float64 else 1e-4
    if not torch.allclose(expected, got, rtol=rtol, atol=rtol * float(expected.abs().max()) + 1e-30):
        raise RuntimeError("internal error: the traced graph does not reproduce the model; please report it.")
    if not torch.isfinite(expected).all():
        raise ValueError("the model returns NaN or inf at the slice origin.")
    return sizes


class Partition:
    """The linear regions of a network on a slice.

    Regions are convex polygons in slice coordinates ``uv``; on region r the
    network is ``f(uv) = affine[r] @ (u, v, 1)``.
    """

    def __init__(self, result: EngineResult, sl: Slice, model=None, graph=None):
        self.slice = sl
        self._verts = result.verts
        self._offsets = result.offsets.astype(np.int64)
        self._labels = result.labels
        self.affine = result.affine
        self._codes = result.codes
        self.layers = list(result.layers)
        self.seconds = result.seconds
        self._centroid_outputs = result.centroid_outputs
        self.model, self.graph = model, graph
        self._decision_boundary = None

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __repr__(self) -> str:
        return f"Partition({len(self):,} regions, {self.n_outputs} outputs, {self.seconds:.2f} s)"

    @property
    def n_outputs(self) -> int:
        """K, the number of network outputs."""
        return self.affine.shape[1]

    @cached_property
    def polygons(self) -> list[np.ndarray]:
        """R arrays (n_i, 2), counter-clockwise."""
        return np.split(self._verts, self._offsets[1:-1])

    @cached_property
    def edge_units(self) -> list[np.ndarray]:
        """R int arrays (n_i, 2): the (layer, unit) whose line carries edge j -> j+1, (-1, -1) on the border."""
        return np.split(self._labels, self._offsets[1:-1])

    @cached_property
    def areas(self) -> np.ndarray:
        """(R,) region areas."""
        return polygon_areas(self._verts, self._offsets)

    @cached_property
    def centroids(self) -> np.ndarray:
        """(R, 2) vertex mean of each region (a point strictly inside it)."""
        return _segment_reduce(self._verts, self._offsets, np.add) / np.diff(self._offsets)[:, None]

    @property
    def centroid_outputs(self) -> np.ndarray:
        """(R, K) network output at each region's centroid (computed relative to the slice
        centre, so it keeps its precision when the slice is far from the origin)."""
        if self._centroid_outputs is None:
            c = self.centroids
            self._centroid_outputs = np.einsum("rkj,rj->rk", self.affine, np.c_[c, np.ones(len(c))])
        return self._centroid_outputs

    @property
    def vertex_counts(self) -> np.ndarray:
        """(R,) vertices per region."""
        return np.diff(self._offsets)

    @property
    def codes(self) -> np.ndarray:
        """(R, n_bits) bool activation pattern, layer after layer: unit above its breakpoint
        (the winner's index in binary for max-type units)."""
        return self.codes_of(np.arange(len(self)))

    def codes_of(self, regions) -> np.ndarray:
        """(N, n_bits) bool activation patterns of the regions ``regions`` (N,)."""
        packed = self._codes[regions]
        parts, start = [], 0
        for layer in self.layers:  # each layer's bits are packed from a byte boundary
            width = -(-layer.bits // 8)
            parts.append(np.unpackbits(packed[:, start : start + width], axis=1, count=layer.bits))
            start += width
        return np.concatenate(parts, axis=1).astype(bool) if parts else np.zeros((len(packed), 0), bool)

    # -- queries ----------------------------------------------------------------

    @cached_property
    def _grid(self):
        return _RegionGrid(self._verts, self._offsets)

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

    def decision_boundary(self):
        """K == 1: where the output crosses 0; K > 1: where the top logit is attained by two classes.
        Computed once, then cached."""
        from .boundary import decision_boundary

        if self._decision_boundary is None:
            self._decision_boundary = decision_boundary(self)
        return self._decision_boundary

    def level_set(self, value: float, output: int = 0):
        """Where output ``output`` crosses ``value``; same type as :meth:`decision_boundary`."""
        from .boundary import level_set

        return level_set(self, value, output)

    def verify(self, n_points: int = 2000, seed: int = 0, model=None):
        """Independent check by sampling; see :func:`splinecam.sampling.verify`."""
        from .sampling import verify

        return verify(self, n_points=n_points, seed=seed, model=model)

    def sample_boundary(self, n: int, seed: int = 0):
        """``n`` points uniform by length on the decision boundary; see :func:`splinecam.sampling.sample_boundary`."""
        from .sampling import sample_boundary

        return sample_boundary(self, n, seed=seed)

    def stats(self) -> dict:
        """Summary statistics of the partition."""
        from .stats import stats

        return stats(self)

    def plot(self, ax=None, color_by: str = "random", boundary: bool = True, points=None, **kwargs):
        """Draw the regions; see :func:`splinecam.plot.plot_partition`."""
        from .plot import plot_partition

        return plot_partition(self, ax=ax, color_by=color_by, boundary=boundary, points=points, **kwargs)

    def to_html(self, path, color_by: str = "random", title: str | None = None):
        """Write an interactive, self-contained HTML viewer; see :func:`splinecam.viewer.to_html`."""
        from .viewer import to_html

        return to_html(self, path, color_by=color_by, title=title)

    # -- save / load ------------------------------------------------------------

    def save(self, path) -> None:
        """Write an ``.npz`` file (arrays and JSON only: loading runs no code)."""
        sl = self.slice
        meta = {
            "format": "splinecam.partition/1", "version": __version__, "seconds": self.seconds,
            "layers": [vars(layer) for layer in self.layers], "input_shape": list(sl.input_shape),
        }
        np.savez_compressed(
            path, verts=self._verts, offsets=self._offsets, labels=self._labels, affine=self.affine,
            centroid_outputs=self.centroid_outputs,
            codes=self._codes, origin=sl.origin, basis=sl.basis, polygon=sl.polygon,
            anchors_uv=np.zeros((0, 2)) if sl.anchors_uv is None else sl.anchors_uv,
            meta=np.array(json.dumps(meta)),
        )

    @classmethod
    def load(cls, path) -> "Partition":
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            if meta.get("format") != "splinecam.partition/1":
                raise ValueError(f"{path} is not a splinecam partition file.")
            anchors = f["anchors_uv"]
            sl = Slice(f["origin"], f["basis"], f["polygon"], anchors_uv=anchors if len(anchors) else None)
            result = EngineResult(
                f["verts"], f["offsets"], f["labels"], f["affine"], f["codes"],
                [LayerInfo(**layer) for layer in meta["layers"]], meta["seconds"], f["centroid_outputs"],
            )
        return cls(result, sl)


class _RegionGrid:
    """A uniform grid of region bounding boxes for point location."""

    def __init__(self, verts: np.ndarray, offsets: np.ndarray):
        self.verts, self.offsets = verts, offsets
        lo = _segment_reduce(verts, offsets, np.minimum)
        hi = _segment_reduce(verts, offsets, np.maximum)
        self.lo, self.hi = verts.min(0), verts.max(0)
        n = len(offsets) - 1
        self.g = int(np.clip(np.sqrt(n), 1, 2048))
        self.size = np.maximum(self.hi - self.lo, 1e-300) / self.g
        c0, c1 = self._cell(lo), self._cell(hi)
        span = c1 - c0 + 1
        per = span[:, 0] * span[:, 1]
        region = np.repeat(np.arange(n), per)
        k = np.arange(per.sum()) - np.repeat(np.cumsum(per) - per, per)
        cx = c0[region, 0] + k % span[region, 0]
        cy = c0[region, 1] + k // span[region, 0]
        cell = cx * self.g + cy
        order = np.argsort(cell, kind="stable")
        self.cell_regions = region[order]
        self.cell_start = np.searchsorted(cell[order], np.arange(self.g * self.g + 1))
        # on an edge: within rounding of the slice's size, or of the coordinates themselves
        self.tol = 1e-12 * float((self.hi - self.lo).max()) + 8 * np.finfo(np.float64).eps * float(np.abs(verts).max())

    def _cell(self, pts: np.ndarray) -> np.ndarray:
        return np.clip(np.floor((pts - self.lo) / self.size).astype(np.int64), 0, self.g - 1)

    def locate(self, pts: np.ndarray) -> np.ndarray:
        result = np.full(len(pts), -1, dtype=np.int64)
        inside_box = np.all((pts >= self.lo - self.tol) & (pts <= self.hi + self.tol), axis=1)
        c = self._cell(pts)
        cell = c[:, 0] * self.g + c[:, 1]
        start, stop = self.cell_start[cell], self.cell_start[cell + 1]
        n_cand = np.where(inside_box, stop - start, 0)
        point = np.repeat(np.arange(len(pts)), n_cand)
        k = np.arange(n_cand.sum()) - np.repeat(np.cumsum(n_cand) - n_cand, n_cand)
        region = self.cell_regions[start[point] + k]
        # edge tests, one row per (candidate, vertex)
        nv = self.offsets[region + 1] - self.offsets[region]
        cand = np.repeat(np.arange(len(region)), nv)
        j = np.arange(nv.sum()) - np.repeat(np.cumsum(nv) - nv, nv)
        a = self.offsets[region][cand] + j
        b = np.where(j + 1 == nv[cand], self.offsets[region][cand], a + 1)
        e = self.verts[b] - self.verts[a]
        d = pts[point[cand]] - self.verts[a]
        cross = e[:, 0] * d[:, 1] - e[:, 1] * d[:, 0]
        bad = cross < -self.tol * np.hypot(e[:, 0], e[:, 1])
        inside = np.bincount(cand, weights=bad, minlength=len(region)) == 0
        hit = point[inside]
        first = np.full(len(pts), np.iinfo(np.int64).max)
        np.minimum.at(first, hit, region[inside])
        found = first < np.iinfo(np.int64).max
        result[found] = first[found]
        return result
