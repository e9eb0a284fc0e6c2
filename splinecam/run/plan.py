"""The plan of one run over a slice, whichever executor runs it: the graph and the shape of
every value, the slice frame, the piecewise-linear layers, the working budget and the chunk
sizes, with the one set of constants they come from."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

import numpy as np
import torch

from ..ops.base import PIECE_BYTES
from .regions import LayerInfo, code_width
from .trace import Graph

__all__ = ["DEFAULT_MEMORY", "PUSH_ELEMENTS", "Plan", "graph_layers", "parse_bytes", "region_bytes",
           "chart_frame", "state_bytes_per_region"]

DEFAULT_MEMORY = "128MB"  # the working budget of a run (``max_memory``) by default
CHUNK_STATE_BYTES = 16 << 20  # states of one chunk: arrays this size are reused by malloc, not mapped afresh
PUSH_ELEMENTS = CHUNK_STATE_BYTES // 4  # numbers in and out of one block of an affine push (32 MiB in float64):
# a chunk's float64 states in and out of a layer as wide as its widest value go in one block
MIN_CHUNK = 16  # pieces made at once at least (unless ``chunk_size`` says fewer)
GATHER_COST = 1 << 20  # an affine op of at least this many multiply-adds a sample (a wide product) ...
GATHER_RATIO = 4  # ... gathers the batches that reach it, where this many times a chunk of the run fits its bounds,
GATHER_MOST = 256  # up to this many regions (768 rows of a product: as fast a row as more; the progress moves)

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_bytes(size) -> int:
    """``4e9``, ``"4GB"``, ``"512MiB"`` -> bytes."""
    if isinstance(size, (int, float)):
        return int(size)
    return _parse_text(str(size))


@functools.lru_cache(maxsize=64)  # (read at every call of a fast path)
def _parse_text(size: str) -> int:
    match = re.fullmatch(r"([0-9.]+(?:E[0-9]+)?)([KMG]I?B|B)?", size.strip().upper().replace(" ", ""))
    if match is None:
        raise ValueError(f"cannot read memory size {size!r}; write e.g. '4GB' or '512MiB'.")
    return int(float(match[1]) * _UNITS[match[2] or ""])


def chart_frame(domain, dtype, device) -> tuple[torch.Tensor, object, torch.Tensor, torch.Tensor]:
    """Where a run over ``domain`` (a chart ``x = origin + basis @ t``, t in R^d) starts: the
    chart point (d,) that is the origin of all states, the domain as one cell about it (see
    the domain's ``frame``), its half-sizes (d,) and the state of the input there
    (1, 1 + d, *input_shape): value, then the d derivatives.  Computed in float64 NumPy, then cast."""
    center, root, extent = domain.frame(dtype, device)
    basis = np.asarray(domain.basis, dtype=np.float64)
    x_ref = np.asarray(domain.origin, dtype=np.float64).reshape(-1) + basis @ center
    state = np.concatenate([x_ref[None], basis.T]).reshape(1, 1 + basis.shape[1], *domain.input_shape)
    center, extent, state = (torch.from_numpy(a).to(dtype=dtype, device=device) for a in (center, extent, state))
    return center, root, extent, state


def graph_layers(graph: Graph, shapes: list[tuple[int, ...]]) -> dict[int, LayerInfo]:
    """The piecewise-linear layers of ``graph`` by the index of their node."""
    return {i: LayerInfo(node.name, *node.op.layer_size(shapes[node.args[0]]))
            for i, node in enumerate(graph.nodes) if node.op.splits}


def state_bytes_per_region(graph: Graph, shapes: list[tuple[int, ...]], dtype, rows: int = 3, start: int = 0) -> int:
    """Memory one region costs at the worst node (from node ``start`` on): its live states
    (``rows`` each: the value and its d derivatives, 1 + d), plus the inputs and outputs of the
    node being run and the per-unit work of a split (about 8 rows)."""
    sizes = [math.prod(s) for s in shapes]
    last_use = graph.last_use()
    worst = sizes[0] if start == 0 else 0
    live = sizes[0] if 0 in last_use else 0  # the values some node at or after i still reads
    for i, node in enumerate(graph.nodes):
        if i >= start:
            worst = max(worst, rows * (live + sizes[i + 1]) + 8 * max(sizes[a] for a in node.args))
        live += (sizes[i + 1] if i + 1 in last_use else 0) - sum(sizes[a] for a in set(node.args) if last_use[a] == i)
    return worst * torch.finfo(dtype).bits // 8


@dataclass
class Plan:
    """What one run over a domain (a slice, a leg of a path) needs, whichever executor runs it.

    graph, shapes: the ops and the per-sample shape of every value (input first); dtype, device:
    of the states; rtol: the on-line tolerance; budget: bytes the per-piece records of one split
    may hold; center (d,), root (one cell), extent (d,), state (1, 1 + d, *input_shape): the
    chart frame (:func:`chart_frame`); layers: the piecewise-linear layers by node; chunks: per split
    node, the most pieces made into one batch at once; gathers: per affine node where batches
    are gathered (a wide product on small states, after larger ones), the regions to gather
    before running it (the batches that reach it wait until they hold as many, or until
    nothing else is left to run)."""

    graph: Graph
    shapes: list[tuple[int, ...]]
    dtype: torch.dtype
    device: torch.device
    rtol: float
    budget: int
    center: torch.Tensor
    root: object  # the domain as one cell (Polygons, Intervals, ...)
    extent: torch.Tensor
    state: torch.Tensor
    layers: dict[int, LayerInfo]
    chunks: dict[int, int]
    gathers: dict[int, int]

    @classmethod
    def make(cls, graph: Graph, shapes: list[tuple[int, ...]], sl, dtype, device, rtol: float, budget: int,
             chunk_size: int | None) -> "Plan":
        """The plan of ``graph`` on ``sl``.  A split's chunk is ``chunk_size`` if given, else as
        many pieces as the budget holds at the worst node (with their polygons and codes), and
        no more than keep the states of a chunk at the widest value within
        ``CHUNK_STATE_BYTES`` (at least ``MIN_CHUNK``).  Where an affine op of at least
        ``GATHER_COST`` multiply-adds a sample comes where ``GATHER_RATIO`` chunks fit those
        bounds counted from it on (its states are small next to the widest), the batches that
        reach it are gathered to that many regions, at most ``GATHER_MOST`` (a product of a few
        rows by a wide weight reads the whole weight for little work), and the splits after it
        make chunks as large as fit."""
        layers = graph_layers(graph, shapes)
        frame = chart_frame(sl, dtype, device)
        rows = frame[3].shape[1]  # a state: the value and its derivatives along the chart
        piece = getattr(frame[1], "piece_bytes", PIECE_BYTES)
        codes = {i: -(-layer.bits // 8) for i, layer in layers.items()}
        sizes, last_use = [math.prod(s) for s in shapes], graph.last_use()

        def fits(start: int, code: int) -> int:  # the regions a chunk holds counted from node ``start`` on
            widest = max(n for j, n in enumerate(sizes) if j > start or last_use.get(j, -1) >= start)
            state_cap = CHUNK_STATE_BYTES // (rows * widest * torch.finfo(dtype).bits // 8)
            return max(MIN_CHUNK, min(budget // (state_bytes_per_region(graph, shapes, dtype, rows, start) + piece + code),
                                      state_cap))

        code = max(codes.values(), default=0)
        gathers = {} if chunk_size else {
            i: min(fits(i, code), GATHER_MOST) for i, node in enumerate(graph.nodes)
            if not node.op.splits and node.op.cost([shapes[a] for a in node.args], shapes[i + 1]) >= GATHER_COST
            and fits(i, code) >= GATHER_RATIO * fits(0, code)}
        first = min(gathers, default=len(graph.nodes))
        chunks = {i: chunk_size or fits(i if i > first else 0, codes[i]) for i in layers}
        return cls(graph, shapes, dtype, device, rtol, budget, *frame, layers, chunks, gathers)

    @property
    def outputs(self) -> int:
        """The number of outputs."""
        return math.prod(self.shapes[-1])

    def region_bytes(self) -> int:
        """Bytes one region of the result costs (about 6 vertices with their edge units, the map,
        the output at the centroid and the packed codes), counted twice: finished batches are
        joined into one array set at the end."""
        return region_bytes(self.outputs, list(self.layers.values()))


def region_bytes(outputs: int, layers: list[LayerInfo]) -> int:
    """Bytes one region of a result with ``outputs`` outputs and the codes of ``layers`` costs
    (see :meth:`Plan.region_bytes`)."""
    code = code_width(layers)
    return 2 * (6 * 32 + 8 + 8 * 4 * outputs + code)
