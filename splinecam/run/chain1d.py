"""The fast path of a polyline's partition for plain MLPs: every leg through the whole chain of a
:class:`~splinecam.run.chain.Chain` in one compiled kernel
(:func:`~splinecam.geometry.compiled1d.chain_pieces`), run in bounded calls.

The kernel cuts the intervals exactly as the engine does with the compiled split of each
elementwise op (the same tolerance, cuts, codes and end units); a piece's state after an op and
the linear layers that follow is its left neighbour's plus the columns of the units that changed
between them, which is where its speed comes from: a cut costs the width of the next layer, not a
matrix product.  The first piece of an interval takes the product of its slope alone: its value
is its neighbour's where they meet (a full product every :data:`REFRESH` pieces).  All legs of
the polylines of a run are in it: the kernel loads a batch of them onto its stack whenever the
stack is empty.  Between calls the time limit, the region limit, progress and Ctrl-C are seen; a
limit's ``.partial`` holds the pieces finished.  The stack holds at most one interval per unit
and layer (depth first), so the memory of a run is its result plus ``stack_bytes`` (the fast
path is not taken where that passes the budget); a small one, with the rows of a first call's
outputs, is kept for the next run (a partition of a short path is made per call, and most of its
cost is not the kernel's); each call's pieces are copied out of those rows, so that a result holds
its own pieces' bytes alone.  The kernel's matrix products run in the BLAS that SciPy links, on the
threads it is set to (OpenBLAS keeps products of up to 4 x 65,536 multiply-adds, a short path's,
on the calling thread); a run leaves that setting alone (setting OpenBLAS to one thread and back
cost a short path's partition about 20 us, half a call): limit it with threadpoolctl.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ..geometry import compiled1d
from ..geometry.linesplit import WORK_PER_CALL
from .chain import Chain
from .plan import graph_layers, region_bytes
from .regions import LayerInfo, code_width
from .stack import warm_allocator
from .watch import Watch

__all__ = ["ENABLED", "PathChain", "REFRESH", "path_chain"]

ENABLED = True  # False: paths take the executor of slices (the tests use it to compare the two)
REFRESH = 16  # a piece's state in full every this many pieces along a leg (bounds the rounding of the sums)
OUT_BYTES = 4 << 20  # the outputs of one call (a chunk of finished pieces) take about this much
BATCH = 256  # intervals of a level cut at once (at least): the rows of one matrix product
FIRST_OUT = 1024  # pieces the first call may output (then twice as many each call)
KEEP_STACK = 4 << 20  # a chain keeps the stack of a finished run for the next if it takes at most this many bytes


@dataclass
class PathChain:
    """A chain as the kernel reads it (see :func:`~splinecam.geometry.compiled1d.chain_pieces`):
    ``meta`` (n_ops, 10) int64, ``weights`` (the transposed weights, flat), ``biases``, ``act``
    (each elementwise op's breakpoints, slopes, intercepts); ``width``: the widest value;
    ``outputs``: K; ``layers``: the piecewise-linear layers; ``caps``: the intervals each
    level holds (before each elementwise op: at least the pieces one interval is cut into);
    ``cuts``: the most pieces one interval is cut into at the last elementwise op."""

    meta: np.ndarray
    weights: np.ndarray
    biases: np.ndarray
    act: np.ndarray
    width: int
    outputs: int
    layers: list[LayerInfo]
    caps: list[int]
    cuts: int
    spare: list = field(default_factory=list, repr=False)  # stacks of finished runs, for the next (see :meth:`_stack`)

    @classmethod
    def of(cls, chain: Chain, inputs: int) -> "PathChain | None":
        """The kernel's reading of ``chain`` on inputs (inputs,) (its ops: linear layers and
        elementwise ops), or None where an elementwise op's slopes are not shared by all units."""
        graph, shapes = chain.graph(inputs)
        layers = graph_layers(graph, shapes)
        meta = np.zeros((len(graph.nodes), len(compiled1d.CHAIN_META)), np.int64)
        weights, biases, act = [], [], []
        sizes = {"w": 0, "b": 0, "a": 0}
        byte = 0
        for i, node in enumerate(graph.nodes):
            n_in, n_out = math.prod(shapes[i]), math.prod(shapes[i + 1])
            op = node.op
            if not op.splits:  # a linear layer: the only affine op of a chain
                w = op.weight.numpy().T.reshape(-1)
                b = op.bias()
                meta[i, :5] = compiled1d.CHAIN_AFFINE, n_in, n_out, sizes["w"], sizes["b"] if b is not None else -1
                weights.append(w)
                sizes["w"] += w.size
                if b is not None:
                    biases.append(b.numpy())
                    sizes["b"] += n_out
            elif op.slopes.dim() == 1:  # an elementwise op (the only other), its pieces shared by all units
                k = op.breakpoints.numel()
                meta[i, [0, 1, 2, 5, 6, 7, 8]] = compiled1d.CHAIN_SPLIT, n_in, n_out, sizes["a"], k, list(layers).index(i), byte
                byte += -(-n_in * k // 8)
                act += [op.breakpoints.numpy(), op.slopes.numpy(), op.intercepts.numpy()]
                sizes["a"] += 3 * k + 2
            else:
                return None
        splits = list(layers)
        for a, b in zip(splits, splits[1:] + [len(meta)]):
            meta[a, 9] = b
        cuts = [0] + [int(meta[i, 1] * meta[i, 6]) + 1 for i in splits]  # pieces of one interval at each level
        cat = lambda parts: np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0), np.float64)  # noqa: E731
        return cls(meta, cat(weights), cat(biases), cat(act), max(math.prod(s) for s in shapes),
                   math.prod(shapes[-1]), list(layers.values()), [max(BATCH, c) for c in cuts], cuts[-1])

    @functools.cached_property
    def stack_bytes(self) -> int:
        """Bytes a run holds besides its result: the intervals waiting at each level (their
        states, ends and codes), the rows of a batch's matrix products and of a first call's
        outputs."""
        nbytes, _, first = self._outputs
        return (sum(self.caps[:-1]) * (16 * self.width + 64 + nbytes) + 16 * max(self.caps) * self.width
                + first * (56 + nbytes + 40 * self.outputs))

    @functools.cached_property
    def region_bytes(self) -> int:
        """Bytes one piece of the result costs (see :func:`~splinecam.run.plan.region_bytes`)."""
        return region_bytes(self.outputs, self.layers)

    def run(self, origin: np.ndarray, step: np.ndarray, starts: np.ndarray, rtol: float, watch: Watch,
            finished: list) -> None:
        """The pieces of the legs ``x = origin + t step`` (each (L, D); t in [0, 1]; the legs start
        at ``starts`` (L,) in their path's t) into ``finished`` as chunks of NumPy arrays (see
        :meth:`pieces`), in order along the legs, watched by ``watch`` (a limit raises after
        ``finished`` holds the pieces so far)."""
        warm_allocator()
        watch.start()
        self._loop(origin, step, starts, rtol, watch, finished)

    @functools.cached_property
    def _outputs(self) -> tuple[int, int, int]:
        """The bytes of a piece's packed code; the pieces one call may output at most, and the
        first call (the rows of a run's outputs then grow twice as large each call up to the most,
        and are kept for the next run: a short run allocates none)."""
        nbytes = code_width(self.layers)
        most = max(self.caps[-1], OUT_BYTES // (16 * self.outputs + 48 + nbytes))
        return nbytes, most, min(max(self.caps[-1], FIRST_OUT), most)

    def _loop(self, origin, step, starts, rtol, watch, finished) -> None:
        """:meth:`run`'s calls of the kernel: each call's pieces copied out of the output rows
        (so a result holds its pieces' bytes alone, and the rows serve the next call)."""
        stack, first, loaded = self._stack()
        out, loaded[0], busy, where = first, 0, True, self.layers[-1].name if self.layers else ""
        while busy:
            watch.check_time()
            size = max(self.cuts, min(len(out[0]), watch.max_regions - watch.done))  # within the region limit
            n, waiting, busy = compiled1d.chain_pieces(self.meta, self.weights, self.biases, self.act, rtol, CENTER,
                                                       WORK_PER_CALL, REFRESH, origin, step, starts, loaded, *stack,
                                                       *out, 0, size)
            finished.append(tuple(x[:n].copy() for x in _pieces_of(out)))
            lo, hi = finished[-1][:2]
            watch.pending = waiting
            watch.add(n, float(hi.sum() - lo.sum()) if watch.measuring(busy) else 0.0)
            watch.check(where, 0)
            if busy and len(out[0]) < self._outputs[1]:  # the next call may output twice as many
                out = self._output_rows(min(2 * len(out[0]), self._outputs[1]))
        if self.stack_bytes <= KEEP_STACK and not self.spare:  # (a finished run's levels are empty)
            self.spare.append((stack, first, loaded))

    def _output_rows(self, size: int) -> tuple:
        """Rows for the pieces one call outputs: ``lo``, ``hi``, ``ends``, ``codes``, states
        about the chart point, ``leg``, maps and outputs at the middles (see
        :func:`~splinecam.geometry.compiled1d.chain_pieces`)."""
        k = self.outputs
        return (np.empty(size), np.empty(size), np.empty((size, 2, 2), np.int64),
                np.empty((size, self._outputs[0]), np.uint8), np.empty((size, 2, k)), np.empty(size, np.int64),
                np.empty((size, k, 2)), np.empty((size, k)))

    def _stack(self) -> tuple:
        """The kernel's levels, empty: ``lv`` (levels + 1, 3) and the rows of their intervals
        (ends, end units, codes, states, legs), and the scratch rows of its products; the rows of
        a first call's outputs; the count of the legs loaded.  A finished run's (its levels are
        empty; taken from ``spare`` by one thread: ``list.pop`` is atomic), else new."""
        try:
            return self.spare.pop()
        except IndexError:
            pass
        caps = self.caps
        rows = sum(caps[:-1])
        lv = np.zeros((len(caps), 3), np.int64)
        lv[:, 0] = list(itertools.accumulate(caps[:-1], initial=0))
        levels = (lv, np.empty(rows), np.empty(rows), np.empty((rows, 2, 2), np.int64),
                  np.empty((rows, code_width(self.layers)), np.uint8), np.empty((rows, 2, self.width)),
                  np.empty(rows, np.int64), np.empty(2 * max(caps) * self.width))
        return levels, self._output_rows(self._outputs[2]), np.zeros(1, np.int64)

    def pieces(self, finished: list) -> tuple:
        """The pieces of the chunks ``finished`` of :meth:`run` in one, in order along the paths:
        their ends ``lo``, ``hi`` (n,) in t, maps (n, K, 2) (output k is ``a t + c``), outputs at
        their middles (n, K), packed codes (n, B), end units (n, 2, 2) and legs (n,)."""
        if len(finished) == 1:
            return finished[0]
        if not finished:
            return _pieces_of(self._output_rows(0))
        return tuple(np.concatenate(x) for x in zip(*finished))


def _pieces_of(out: tuple) -> tuple:
    """The output rows of :meth:`PathChain._output_rows` in the order of :meth:`PathChain.pieces`
    (without the states)."""
    lo, hi, ends, code, _, leg, affine, middle = out
    return lo, hi, affine, middle, code, ends, leg


CENTER = 0.5  # the chart point of every leg of a polyline (its middle: t in [0, 1] is [-CENTER, CENTER] about it)


def path_chain(chain: Chain, inputs: int) -> PathChain | None:
    """:meth:`PathChain.of`, made once per chain and input width."""
    if not ENABLED:
        return None
    key = ("path", inputs)
    if key not in chain.derived:
        chain.derived[key] = PathChain.of(chain, inputs)
    return chain.derived[key]

