"""The fast path of a polyline's partition for plain MLPs: every leg through the whole chain of a
:class:`~splinecam.run.chain.Chain` in one compiled kernel
(:func:`~splinecam.geometry.compiled1d.chain_pieces`), run in bounded calls.

The kernel cuts the intervals exactly as the engine does with the compiled split of each
elementwise op (the same tolerance, cuts, codes and end units); a piece's state after an op and
the linear layers that follow is its left neighbour's plus the columns of the units that changed
between them (a full product every :data:`REFRESH` pieces), which is where its speed comes from:
a cut costs the width of the next layer, not a matrix product.  All legs of a polyline are in
one run: their intervals start on the kernel's stack.  Between calls the time limit, the region
limit, progress and Ctrl-C are seen; a limit's ``.partial`` holds the pieces finished.  The
stack holds at most one interval per unit and layer (depth first), so the memory of a run is
its result plus ``stack_bytes`` (the fast path is not taken where that passes the budget).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..geometry import BORDER, Intervals, compiled1d
from ..geometry.linesplit import WORK_PER_CALL
from ..ops import ElementwiseOp, LinearOp
from .chain import Chain
from .pieces import PieceArrays
from .plan import graph_layers
from .regions import LayerInfo, code_width
from .watch import Watch

__all__ = ["ENABLED", "PathChain", "REFRESH", "path_chain"]

ENABLED = True  # False: paths take the executor of slices (the tests use it to compare the two)
REFRESH = 16  # a piece's state in full every this many pieces of an interval (bounds the rounding of the sums)
OUT_BYTES = 4 << 20  # the outputs of one call (a chunk of finished pieces) take about this much


@dataclass
class PathChain:
    """A chain as the kernel reads it (see :func:`~splinecam.geometry.compiled1d.chain_pieces`):
    ``meta`` (n_ops, 10) int64, ``weights`` (the transposed weights, flat), ``biases``, ``act``
    (each elementwise op's breakpoints, slopes, intercepts); ``first``: the first elementwise op;
    ``width``: the widest value; ``outputs``: K; ``layers``: the piecewise-linear layers;
    ``depth``: the most intervals one item's cut pushes, summed over the ops (the stack of one
    leg)."""

    meta: np.ndarray
    weights: np.ndarray
    biases: np.ndarray
    act: np.ndarray
    first: int
    width: int
    outputs: int
    layers: list[LayerInfo]
    depth: int

    @classmethod
    def of(cls, chain: Chain, inputs: int) -> "PathChain | None":
        """The kernel's reading of ``chain`` on inputs (inputs,), or None where an op is neither a
        linear layer nor an elementwise op with slopes shared by all units."""
        graph, shapes = chain.graph(inputs)
        layers = graph_layers(graph, shapes)
        meta = np.zeros((len(graph.nodes), len(compiled1d.CHAIN_META)), np.int64)
        weights, biases, act = [], [], []
        sizes = {"w": 0, "b": 0, "a": 0}
        byte = 0
        for i, node in enumerate(graph.nodes):
            n_in, n_out = math.prod(shapes[i]), math.prod(shapes[i + 1])
            op = node.op
            if type(op) is LinearOp and not op.flat:
                w = op.weight.numpy().T.reshape(-1)
                b = op.bias()
                meta[i, :5] = compiled1d.CHAIN_AFFINE, n_in, n_out, sizes["w"], sizes["b"] if b is not None else -1
                weights.append(w)
                sizes["w"] += w.size
                if b is not None:
                    biases.append(b.numpy())
                    sizes["b"] += n_out
            elif isinstance(op, ElementwiseOp) and op.slopes.dim() == 1:
                k = op.breakpoints.numel()
                layer = list(layers).index(i)
                meta[i, [0, 1, 2, 5, 6, 7, 8]] = compiled1d.CHAIN_SPLIT, n_in, n_out, sizes["a"], k, layer, byte
                byte += -(-n_in * k // 8)
                act += [op.breakpoints.numpy(), op.slopes.numpy(), op.intercepts.numpy()]
                sizes["a"] += 3 * k + 2
            else:
                return None
        splits = [i for i in range(len(meta)) if meta[i, 0] == compiled1d.CHAIN_SPLIT]
        for a, b in zip(splits, splits[1:] + [len(meta)]):
            meta[a, 9] = b
        cat = lambda parts: np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0), np.float64)  # noqa: E731
        return cls(meta, cat(weights), cat(biases), cat(act), splits[0] if splits else len(meta),
                   max(math.prod(s) for s in shapes), math.prod(shapes[-1]), list(layers.values()),
                   sum(int(meta[i, 1] * meta[i, 6]) + 1 for i in splits))

    def stack_bytes(self, legs: int) -> int:
        """Bytes of the stack of a run over ``legs`` legs (its states, intervals and codes)."""
        return (legs + self.depth) * (16 * self.width + 64 + code_width(self.layers))

    def run(self, legs: list, rtol: float, watch: Watch, finished: list) -> None:
        """The pieces of the legs ``legs`` ((start, Leg) of one polyline) into ``finished`` as
        (leg, lo, hi, ends, codes, states) chunks of NumPy arrays (the intervals about each
        leg's middle, the states (n, 2, K) there), in order along the path, watched by
        ``watch`` (a limit raises after ``finished`` holds the pieces so far)."""
        n_legs, width, nbytes = len(legs), self.width, code_width(self.layers)
        size = n_legs + self.depth
        s_op, s_lo, s_hi, s_leg = np.empty(size, np.int64), np.empty(size), np.empty(size), np.empty(size, np.int64)
        s_ends, s_code, s_z = np.empty((size, 2, 2), np.int64), np.empty((size, nbytes), np.uint8), np.empty((size, 2, width))
        s_op[:n_legs], s_ends[:n_legs], s_code[:n_legs], s_z[:n_legs] = -1, BORDER, 0, 0.0
        extent = 0.0
        for slot, (number, (_, leg)) in enumerate(reversed(list(enumerate(legs)))):  # the first leg on top
            center, ends, half = leg.bounds()
            s_lo[slot], s_hi[slot], extent = ends[0, 0], ends[1, 0], half[0]
            s_z[slot, 0, :leg.basis.shape[0]] = leg.origin.reshape(-1) + leg.basis @ center
            s_z[slot, 1, :leg.basis.shape[0]] = leg.basis[:, 0]
            s_leg[slot] = number
        bmax = max([int(r[1] * r[6]) for r in self.meta if r[0] == compiled1d.CHAIN_SPLIT], default=0)
        most = max(bmax + 1, OUT_BYTES // (16 * self.outputs + 48 + nbytes))  # pieces one call may output
        cap = min(most, 4 * (bmax + 1) + 64)  # doubled each call up to ``most``: a short run allocates little
        sp = n_legs
        watch.start()
        watch.pending = sp
        while sp:
            watch.check_time()
            o_lo, o_hi, o_ends = np.empty(cap), np.empty(cap), np.empty((cap, 2, 2), np.int64)
            o_code, o_z, o_leg = np.empty((cap, nbytes), np.uint8), np.empty((cap, 2, self.outputs)), np.empty(cap, np.int64)
            n, sp, _ = compiled1d.chain_pieces(self.meta, self.weights, self.biases, self.act, self.first, rtol, extent,
                                               WORK_PER_CALL, REFRESH, s_op, s_lo, s_hi, s_ends, s_code, s_z, s_leg, sp,
                                               o_lo, o_hi, o_ends, o_code, o_z, o_leg)
            finished.append((o_leg[:n], o_lo[:n], o_hi[:n], o_ends[:n], o_code[:n], o_z[:n]))
            cap = min(2 * cap, most)
            watch.pending = sp
            watch.finished(Intervals(torch.from_numpy(o_lo[:n]), torch.from_numpy(o_hi[:n]), torch.from_numpy(o_ends[:n])))
            watch.check(self.layers[-1].name if self.layers else "", 0)

    def pieces(self, legs: list, finished: list) -> list[tuple[float, PieceArrays]]:
        """(start, pieces) of each leg from the chunks ``finished`` of :meth:`run`."""
        if not finished:
            return []
        leg, lo, hi, ends, codes, out = (x[0] if len(finished) == 1 else np.concatenate(x) for x in zip(*finished))
        bounds = np.searchsorted(leg, np.arange(len(legs) + 1))
        parts = []
        for number, (start, chart) in enumerate(legs):
            s = slice(bounds[number], bounds[number + 1])
            c0 = chart.bounds()[0]
            parts.append((start, PieceArrays.of_states(lo[s] + c0[0], hi[s] + c0[0], ends[s], out[s], c0,
                                                       ((lo[s] + hi[s]) / 2)[:, None], codes[s])))
        return parts


def path_chain(chain: Chain, inputs: int) -> PathChain | None:
    """:meth:`PathChain.of`, made once per chain and input width."""
    if not ENABLED:
        return None
    key = ("path", inputs)
    if key not in chain.derived:
        chain.derived[key] = PathChain.of(chain, inputs)
    return chain.derived[key]

