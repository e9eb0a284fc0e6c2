"""Schedule the ops of a graph over batches of regions: push affine states through affine ops,
let split ops split the regions, make the pieces chunk by chunk so that memory stays bounded,
watch the region and time limits and show progress.  The rules themselves belong to the ops.

The work is a stack (depth first): the pieces of a split are made chunk by chunk when popped,
and a split that stops at its memory budget hands back the pieces it has not finished, which
are split again later.  So every step is bounded, Ctrl-C and the time limit are seen between
steps, and what is finished early is whole areas of the slice."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from ..geometry import Polygons
from ..ops import AffineOp, Split, SplitContext, SplitOp
from .regions import LayerInfo, RegionArrays, concat_regions, join_regions, region_arrays
from ..slices import Slice
from .trace import Graph
from .watch import Watch


_PUSH_ELEMENTS = 1 << 21  # numbers in and out of one block of an affine push (16 MiB in float64)


@dataclass
class Batch:
    """Regions that have gone through the same ops: polygons and live activation states."""

    polys: Polygons
    values: dict[int, torch.Tensor]  # value index -> (R, 3, *shape): value, d/du, d/dv
    codes: list[torch.Tensor]  # per split layer so far: (R, ceil(bits / 8)) packed bits, uint8
    node: int = 0  # next node to run

    def __len__(self) -> int:
        return len(self.polys)


@dataclass
class Chunk:
    """Pieces ``sel`` of the split made at node ``node``, to be made into a batch when popped:
    finished pieces past the split, or (``again``) pieces the split left to split again."""

    parent: Batch
    split: Split
    sel: torch.Tensor
    node: int
    again: bool = False


@dataclass
class EngineResult:
    regions: RegionArrays
    layers: list[LayerInfo]
    seconds: float
    exact: np.ndarray  # (R,) bool: False for the coarse cells a ``prune`` callable settled


def slice_frame(sl: Slice, dtype, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where a run starts: the centre of the slice polygon (2,) (the uv origin of all states),
    the polygon about it (V, 2), its half-sizes (2,) and the state of the input there
    (1, 3, *input_shape): value, d/du, d/dv.  Computed in float64 NumPy, then cast."""
    poly = np.asarray(sl.polygon, dtype=np.float64)
    center = poly.mean(0)
    root = poly - center
    basis = np.asarray(sl.basis, dtype=np.float64)
    x_ref = np.asarray(sl.origin, dtype=np.float64).reshape(-1) + basis @ center
    state = np.stack([x_ref, basis[:, 0], basis[:, 1]]).reshape(1, 3, *sl.input_shape)
    return tuple(torch.from_numpy(a).to(dtype=dtype, device=device) for a in (center, root, np.abs(root).max(0), state))


class Engine:
    """Computes the partition of a slice for a traced graph.

    shapes: the per-sample shape of every graph value (input first); the
    states of a region are taken about the centre of the slice polygon.
    budget: bytes the per-piece records of one split may hold at once;
    timeout: seconds from ``started`` (a ``time.perf_counter()`` reading, default the start of
    :meth:`run`; None: no limit); limit_note: said of ``max_regions`` in its error;
    prune(i, polys, values): optional; before split node i, given a batch's polygons (R,)
    (about the slice centre) and live states, returns (R,) bool: the regions to stop
    refining.  They leave as coarse cells (NaN maps, zero codes) after the exact regions.
    """

    def __init__(self, graph: Graph, sl: Slice, shapes: list[tuple[int, ...]], dtype, device, rtol: float,
                 max_regions: int, chunk_size: int, progress, budget: int = 128 * 10**6,
                 timeout: float | None = None, limit_note: str = "", started: float | None = None,
                 prune=None):
        self.graph, self.slice = graph, sl
        self.dtype, self.device = dtype, device
        self.chunk_size = chunk_size
        self.watch = Watch(sl, progress, max_regions, timeout, started, limit_note)
        self.center, self.root, extent, self.state = slice_frame(sl, dtype, device)
        self.last_use = graph.last_use()
        self.n_outputs = int(np.prod(shapes[-1]))
        self.layers: list[LayerInfo] = []
        self.contexts: dict[int, SplitContext] = {}
        for i, node in enumerate(graph.nodes):
            if isinstance(node.op, SplitOp):
                units, bits = node.op.layer_size(shapes[node.args[0]])
                check = functools.partial(self.watch.check, node.name)
                self.contexts[i] = SplitContext(rtol, extent, len(self.layers), check, budget)
                self.layers.append(LayerInfo(node.name, units, bits))
        self.finished: list[RegionArrays] = []
        self.sizes = [int(np.prod(shape)) for shape in shapes]
        self.prune, self.coarse = prune, []

    def run(self) -> EngineResult:
        """The partition; a limit raises :class:`RegionLimitError` / :class:`TimeLimitError`
        after :meth:`finished_regions` holds what was finished."""
        watch = self.watch
        watch.start()
        stack: list[Batch | Chunk] = [Batch(Polygons.single(self.root), {0: self.state}, [])]
        watch.pending = 1
        try:
            while stack:
                item = stack.pop()
                watch.pending -= len(item.sel) if isinstance(item, Chunk) else len(item)
                watch.check_time()
                batch = self._make(item) if isinstance(item, Chunk) else item
                n_coarse = len(self.coarse)
                batch = self._advance(batch, stack)
                watch.area += sum(float(c.areas().sum()) for c in self.coarse[n_coarse:])
                if batch is not None:
                    self.finished.append(self._finish(batch))
                    watch.finished(batch.polys)
        finally:
            watch.close()
        exact = self.finished_regions()
        coarse = [self._coarse(c) for c in self.coarse]
        flags = np.repeat([True, False], [len(exact), sum(map(len, coarse))])
        return EngineResult(concat_regions([exact] + coarse), self.layers, self.elapsed(), flags)

    def elapsed(self) -> float:
        """Seconds since the run started (``started``, or the start of :meth:`run`)."""
        return self.watch.elapsed()

    def finished_regions(self) -> RegionArrays:
        """The regions finished so far (all of them after :meth:`run`), in one array set."""
        self.finished = [join_regions(self.finished, self.n_outputs, self.layers)]
        return self.finished[0]

    def _advance(self, batch: Batch, stack: list) -> Batch | None:
        """Run nodes until the graph ends (return the batch) or a split makes more regions than
        a chunk (push its chunks, to be made when popped, and return None).  Pieces a split
        left unfinished are pushed as chunks to split again."""
        nodes = self.graph.nodes
        while batch.node < len(nodes):
            i = batch.node
            op = nodes[i].op
            if isinstance(op, SplitOp):
                if self.prune is not None:
                    batch = self._prune(batch, i)
                    if batch is None:
                        return None
                split = op.split(batch.polys, batch.values[nodes[i].args[0]], self.contexts[i])
                self.contexts[i].check(len(split))
                if split.rest is not None and len(split.rest):
                    self._push(stack, batch, split, len(split.rest), i, again=True)
                if len(split) > self.chunk_size or not len(split):
                    self._push(stack, batch, split, len(split), i)
                    return None
                batch = self._make(Chunk(batch, split, torch.arange(len(split), device=self.device), i))
                continue
            if not isinstance(op, AffineOp):
                raise TypeError(f"no engine rule for op {type(op).__name__} at {nodes[i].name}")
            batch.values[i + 1] = self._push_affine(i, op, [batch.values[a] for a in nodes[i].args])
            self._retire(batch, i)
        return batch

    def _push_affine(self, i: int, op: AffineOp, states: list[torch.Tensor]) -> torch.Tensor:
        """``op.push`` in blocks of regions of a fixed size (about ``_PUSH_ELEMENTS`` numbers in
        and out per block), so that an op as costly as a wide linear layer stays interruptible
        and the result does not depend on the machine's speed."""
        r = states[0].shape[0]
        per_region = 3 * (self.sizes[i + 1] + sum(self.sizes[a] for a in self.graph.nodes[i].args))
        block = max(1, _PUSH_ELEMENTS // per_region)
        out = []
        for s in range(0, r, block):
            if s:
                self.watch.check_time()
            out.append(op.push(*[x[s : s + block] for x in states]))
        return out[0] if len(out) == 1 else torch.cat(out)

    def _push(self, stack: list, batch: Batch, split: Split, n: int, i: int, again: bool = False) -> None:
        """Push the chunks of ``n`` pieces of ``split`` (or of its rest, ``again``) so that the
        first is popped first: the order the split gave them (depth first, or spatial), so
        that each chunk finishes a compact area."""
        order = torch.arange(n, device=self.device)
        for s in reversed(range(0, n, self.chunk_size)):
            stack.append(Chunk(batch, split, order[s : s + self.chunk_size], i, again))
        self.watch.pending += n

    def _prune(self, batch: Batch, i: int) -> Batch | None:
        """The regions of the batch that ``prune`` does not settle before node i (None if it
        settles all); the settled ones go to the coarse cells."""
        settled = self.prune(i, batch.polys, batch.values)
        if not settled.any():
            return batch
        self.coarse.append(batch.polys.mask(settled))
        if settled.all():
            return None
        keep = ~settled
        return Batch(batch.polys.mask(keep), {k: v[keep] for k, v in batch.values.items()},
                     [c[keep] for c in batch.codes], i)

    def _make(self, chunk: Chunk) -> Batch:
        """The batch of the pieces of a chunk: past its split node, or before it (``again``)."""
        parent, i = chunk.parent, chunk.node
        pieces, index = (chunk.split.rest, chunk.split.rest_parent) if chunk.again else (chunk.split.pieces, chunk.split.parent)
        index = index[chunk.sel]
        child = Batch(pieces.select(chunk.sel)[0], {k: v[index] for k, v in parent.values.items()},
                      [c[index] for c in parent.codes], i)
        if chunk.again:
            return child
        arg = self.graph.nodes[i].args[0]
        child.values[i + 1], code = chunk.split.apply(child.values[arg], chunk.sel, self.last_use[arg] == i)
        child.codes.append(code)
        self._retire(child, i)
        return child

    def _retire(self, batch: Batch, i: int) -> None:
        """After node i: drop the values it was the last to use, move on to node i + 1."""
        for a in self.graph.nodes[i].args:
            if self.last_use[a] == i:
                batch.values.pop(a, None)
        batch.node = i + 1

    def _finish(self, batch: Batch) -> RegionArrays:
        """A finished batch on the CPU in absolute slice coordinates, with what the result keeps."""
        codes = torch.cat(batch.codes, 1) if batch.codes else torch.zeros(len(batch), 0, dtype=torch.uint8)
        return region_arrays(batch.polys, batch.values[len(self.graph.nodes)], self.center, codes)

    def _coarse(self, polys: Polygons) -> RegionArrays:
        """Settled cells (about the slice centre) as regions with NaN maps and zero codes."""
        r, k = len(polys), self.n_outputs
        width = sum(-(-layer.bits // 8) for layer in self.layers)
        nan = np.full((r, k), np.nan)
        return RegionArrays((polys.verts + self.center).cpu().numpy(), polys.offsets.cpu().numpy(),
                            polys.edge_units.cpu().numpy(), np.full((r, k, 3), np.nan),
                            np.zeros((r, width), np.uint8), nan)
