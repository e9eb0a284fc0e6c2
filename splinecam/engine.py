"""Schedule the ops of a graph over batches of regions: push affine states through affine ops,
let split ops split the regions, make the pieces chunk by chunk so that memory stays bounded,
watch the region limit and show progress.  The rules themselves belong to the ops."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from .geometry import Polygons
from .ops import AffineOp, Split, SplitContext, SplitOp
from .regions import LayerInfo, RegionArrays
from .slices import Slice
from .trace import Graph


class RegionLimitError(RuntimeError):
    """The partition has more regions than the ``max_regions`` limit."""


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
    """Pieces ``sel`` of the split made at node ``node``, to be made into a batch when popped."""

    parent: Batch
    split: Split
    sel: torch.Tensor
    node: int


@dataclass
class EngineResult:
    regions: RegionArrays
    layers: list[LayerInfo]
    seconds: float
    exact: np.ndarray  # (R,) bool: False for the coarse cells a ``prune`` callable settled


class Engine:
    """Computes the partition of a slice for a traced graph.

    shapes: the per-sample shape of every graph value (input first); the
    states of a region are taken about the centre of the slice polygon.
    prune(i, polys, values): optional; before split node i, given a batch's polygons (R,)
    (about the slice centre) and live states, returns (R,) bool: the regions to stop
    refining.  They leave as coarse cells (NaN maps, zero codes) after the exact regions.
    """

    def __init__(self, graph: Graph, sl: Slice, shapes: list[tuple[int, ...]], dtype, device, rtol: float,
                 max_regions: int, chunk_size: int, progress, prune=None):
        self.graph, self.slice = graph, sl
        self.dtype, self.device = dtype, device
        self.max_regions, self.chunk_size = max_regions, chunk_size
        self.progress = progress
        poly = torch.as_tensor(sl.polygon, dtype=dtype, device=device)
        self.center = poly.mean(0)
        self.root = poly - self.center
        extent = self.root.abs().amax(0)
        self.last_use = graph.last_use()
        self.graph_outputs = math.prod(shapes[-1])
        self.layers: list[LayerInfo] = []
        self.contexts: dict[int, SplitContext] = {}
        for i, node in enumerate(graph.nodes):
            if isinstance(node.op, SplitOp):
                units, bits = node.op.layer_size(shapes[node.args[0]])
                self.contexts[i] = SplitContext(rtol, extent, len(self.layers), self._limit_check(node.name))
                self.layers.append(LayerInfo(node.name, units, bits))
        self.n_done = self.pending = 0
        self.prune, self.coarse = prune, []

    def run(self) -> EngineResult:
        start = time.perf_counter()
        origin = torch.as_tensor(self.slice.origin, dtype=self.dtype, device=self.device)
        basis = torch.as_tensor(self.slice.basis, dtype=self.dtype, device=self.device)
        x_ref = origin.reshape(-1) + basis @ self.center
        state = torch.stack([x_ref, basis[:, 0], basis[:, 1]]).reshape(1, 3, *self.slice.input_shape)
        stack: list[Batch | Chunk] = [Batch(Polygons.single(self.root), {0: state}, [])]
        out: list[RegionArrays] = []
        bar = self._bar()
        while stack:
            item = stack.pop()
            batch = self._make(item) if isinstance(item, Chunk) else item
            n_coarse = len(self.coarse)
            batch = self._advance(batch, stack)
            if bar is not None and len(self.coarse) > n_coarse:
                bar.update(min(sum(float(c.areas().sum()) for c in self.coarse[n_coarse:]), bar.total - bar.n))
            if batch is not None:
                out.append(self._finish(batch))
                self.n_done += len(batch)
                if bar is not None:
                    bar.update(min(float(batch.polys.areas().sum()), bar.total - bar.n))
                    bar.set_postfix(regions=self.n_done, refresh=False)
        if bar is not None:
            bar.close()
        exact = np.repeat([True, False], [sum(map(len, out)), sum(map(len, self.coarse))])
        out += [self._coarse(c) for c in self.coarse]
        return EngineResult(_concat(out), self.layers, time.perf_counter() - start, exact)

    def _bar(self):
        if self.progress is False:
            return None
        from tqdm.auto import tqdm

        return tqdm(
            total=float(self.slice.area), delay=0 if self.progress else 2.0, desc="splinecam",
            bar_format="{desc}: {percentage:3.0f}% of the slice |{bar}| {elapsed}<{remaining}{postfix}",
        )

    def _advance(self, batch: Batch, stack: list) -> Batch | None:
        """Run nodes until the graph ends (return the batch) or a split makes more regions than
        a chunk (push its chunks, to be made when popped, and return None)."""
        nodes = self.graph.nodes
        self.pending = sum(len(item.sel) if isinstance(item, Chunk) else len(item) for item in stack)
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
                if len(split) > self.chunk_size:
                    for s in reversed(range(0, len(split), self.chunk_size)):
                        sel = torch.arange(s, min(s + self.chunk_size, len(split)), device=self.device)
                        stack.append(Chunk(batch, split, sel, i))
                    return None
                batch = self._make(Chunk(batch, split, torch.arange(len(split), device=self.device), i))
                continue
            if not isinstance(op, AffineOp):
                raise TypeError(f"no engine rule for op {type(op).__name__} at {nodes[i].name}")
            batch.values[i + 1] = op.push(*[batch.values[a] for a in nodes[i].args])
            self._retire(batch, i)
        return batch

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
        """The batch of the pieces of a chunk, past its split node."""
        parent, i = chunk.parent, chunk.node
        index = chunk.split.parent[chunk.sel]
        child = Batch(chunk.split.pieces.select(chunk.sel)[0], {k: v[index] for k, v in parent.values.items()},
                      [c[index] for c in parent.codes], i)
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

    def _limit_check(self, where: str):
        """A check that raises if ``regions`` more (at least) would pass ``max_regions``."""

        def check(regions: int) -> None:
            total = self.n_done + self.pending + regions
            if total > self.max_regions:
                raise RegionLimitError(
                    f"the partition has more than max_regions={self.max_regions:,} regions "
                    f"(at least {total:,} at {where or 'an unnamed op'}); "
                    "use a smaller slice or pass a larger max_regions."
                )

        return check

    def _finish(self, batch: Batch) -> RegionArrays:
        """A finished batch on the CPU in absolute slice coordinates, with what the result keeps."""
        out = batch.values[len(self.graph.nodes)]
        out = out.reshape(len(batch), 3, -1)
        a, b, c = out[:, 1], out[:, 2], out[:, 0] - out[:, 1] * self.center[0] - out[:, 2] * self.center[1]
        cen = batch.polys.centroids()  # relative to the slice centre: no cancellation
        at_cen = out[:, 0] + out[:, 1] * cen[:, :1] + out[:, 2] * cen[:, 1:]
        codes = torch.cat(batch.codes, 1) if batch.codes else torch.zeros(len(batch), 0, dtype=torch.uint8)
        return RegionArrays(
            (batch.polys.verts + self.center).cpu().numpy(), batch.polys.offsets.cpu().numpy(),
            batch.polys.edge_units.cpu().numpy(), torch.stack([a, b, c], -1).cpu().numpy(), codes.cpu().numpy(),
            at_cen.cpu().numpy(),
        )

    def _coarse(self, polys: Polygons) -> RegionArrays:
        """Settled cells (about the slice centre) as regions with NaN maps and zero codes."""
        r, k = len(polys), self.graph_outputs
        width = sum(-(-layer.bits // 8) for layer in self.layers)
        nan = np.full((r, k), np.nan)
        return RegionArrays((polys.verts + self.center).cpu().numpy(), polys.offsets.cpu().numpy(),
                            polys.edge_units.cpu().numpy(), np.full((r, k, 3), np.nan),
                            np.zeros((r, width), np.uint8), nan)


def _concat(parts: list[RegionArrays]) -> RegionArrays:
    """The regions of several finished batches, in order."""
    counts = np.concatenate([np.diff(p.offsets) for p in parts])
    return RegionArrays(
        np.concatenate([p.vertices for p in parts]), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        np.concatenate([p.edge_units for p in parts]), np.concatenate([p.affine for p in parts]),
        np.concatenate([p.packed_codes for p in parts]), np.concatenate([p.centroid_outputs for p in parts]),
    )
