"""The work stack of a run, whichever executor advances its batches: pending pieces, depth
first, made chunk by chunk when popped; the measure (length, area) and region bookkeeping, the
limits and the progress (through :class:`~splinecam.run.watch.Watch`); the regions finished and
the cells a ``prune`` callable settled.  The cells are of any dimension (the cell interface of
:mod:`splinecam.geometry.cells`); the result type is the one :data:`RESULTS` gives their type."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..geometry import Arcs, Intervals, Polygons, Polyhedra
from ..ops import SplitContext
from .pieces import PieceArrays
from .plan import CHUNK_STATE_BYTES, Plan
from .regions import RegionArrays, code_width, join_regions
from .volume_cells import CellArrays
from .watch import Watch

__all__ = ["Batch", "RESULTS", "WorkStack", "warm_allocator"]

RESULTS = {Polygons: RegionArrays, Intervals: PieceArrays, Arcs: PieceArrays, Polyhedra: CellArrays}  # cell type -> the result type of a run


@dataclass
class Batch:
    """Regions that have gone through the same ops: cells (any cell type) and live activation states."""

    polys: Polygons | Intervals | Polyhedra  # any cell type
    values: dict[int, torch.Tensor]  # value index -> (R, 1 + d, *shape): value, then its d derivatives
    codes: list[torch.Tensor]  # per split layer so far: (R, ceil(bits / 8)) packed bits, uint8
    node: int = 0  # next node to run
    gathered: int = -1  # the node at which it was gathered from several batches (see Plan.gathers)

    def __len__(self) -> int:
        return len(self.polys)

    def select(self, polys, index: torch.Tensor, node: int) -> "Batch":
        """The batch of ``polys`` made from the regions ``index`` (an index or a mask) of this
        one, before ``node``."""
        return Batch(polys, {k: v[index] for k, v in self.values.items()}, [c[index] for c in self.codes], node)

    @staticmethod
    def cat(batches: list["Batch"]) -> "Batch":
        """The batches (at the same node) as one."""
        if len(batches) == 1:
            return batches[0]
        first = batches[0]
        return Batch(type(first.polys).cat([b.polys for b in batches]),
                     {k: torch.cat([b.values[k] for b in batches]) for k in first.values},
                     [torch.cat(c) for c in zip(*(b.codes for b in batches))], first.node)


@dataclass
class EngineResult:
    regions: RegionArrays
    layers: list
    seconds: float
    exact: np.ndarray  # (R,) bool: False for the coarse cells a ``prune`` callable settled


@functools.cache
def warm_allocator() -> None:
    """Once per process: allocate and free (untouched) a block twice the size of a chunk's states,
    so that glibc's malloc, whose thresholds follow the largest block freed, keeps the states of
    later chunks in its heap for reuse, rather than giving the top of the heap back to the system
    each time two of them are freed there and faulting the pages in again (up to 10% of a run on
    wide MLPs).  Elsewhere it is one allocation."""
    np.empty(2 * CHUNK_STATE_BYTES - (1 << 16), np.uint8)  # under glibc's most for the threshold (32 MiB)


class WorkStack:
    """One run of a plan over a domain, depth first: :meth:`run` pops a pending item, makes its
    batch and lets :meth:`advance` take it through the graph; a batch past the last node is
    finished.  An executor gives :meth:`advance` (which pushes the pieces of a split with
    :meth:`push` and returns None).  A limit raises (see :class:`Watch`) after
    :meth:`finished_regions` holds the regions finished so far.

    prune(i, polys, values): optional; before split node i, given a batch's cells (R,)
    (about the chart's centre) and live states, returns (R,) bool: the regions to stop refining.
    They leave as coarse cells (NaN maps, zero codes) after the exact regions."""

    def __init__(self, plan: Plan, prune: Callable | None = None):
        self.plan, self.prune = plan, prune
        self.layers = list(plan.layers.values())
        self.kind = RESULTS[type(plan.root)]  # the result type
        self.finished: list = []
        self.coarse: list = []
        self.parked: dict[int, list[Batch]] = {}  # node -> batches waiting there to be gathered

    def run(self, watch: Watch) -> EngineResult:
        """The partition, watched by ``watch``."""
        plan = self.plan
        self.watch = watch
        self.contexts = {i: SplitContext(plan.rtol, plan.extent, k, functools.partial(watch.check, layer.name),
                                         plan.budget) for k, (i, layer) in enumerate(plan.layers.items())}
        stack: list[tuple[int, Callable[[], Batch]]] = [
            (1, functools.partial(Batch, plan.root, {0: plan.state}, []))]
        warm_allocator()
        watch.start()
        watch.pending = 1
        try:
            while stack or self.parked:
                watch.check_time()
                if not stack:  # only gathered batches are left: the first node's go on, as many as there are
                    batch = self.release(min(self.parked))
                else:
                    n, make = stack.pop()
                    watch.pending -= n
                    batch = make()
                    del make  # the item may hold its parent's states: let them go with the last piece
                batch = self.advance(batch, stack)
                if batch is not None:
                    self.finished.append(self._finish(batch))
                    watch.finished(batch.polys)
        finally:
            watch.close()
        exact = self.finished_regions()
        coarse = [self._coarse(c) for c in self.coarse]
        flags = np.repeat([True, False], [len(exact), sum(map(len, coarse))])
        return EngineResult(self.kind.concat([exact] + coarse), self.layers, watch.elapsed(), flags)

    def advance(self, batch: Batch, stack: list) -> Batch | None:
        """Take ``batch`` through the graph: return it past the last node, or push the pieces
        of a split and return None."""
        raise NotImplementedError

    def push(self, stack: list, n: int, chunk: int, make: Callable[[torch.Tensor], Batch]) -> None:
        """Push ``n`` pieces in chunks of ``chunk``, each made by ``make(sel)`` when popped, so
        that the first is popped first: the order the split gave them (depth first, or
        spatial), so that each chunk finishes a compact area."""
        order = torch.arange(n, device=self.plan.device)
        for s in reversed(range(0, n, chunk)):
            sel = order[s : s + chunk]
            stack.append((len(sel), functools.partial(make, sel)))
        self.watch.pending += n

    def gather(self, batch: Batch) -> Batch | None:
        """Park ``batch`` at its node (one of ``plan.gathers``); once the batches parked there hold
        the regions the plan gathers there, all of them as one batch (else None)."""
        held = self.parked.setdefault(batch.node, [])
        held.append(batch)
        self.watch.pending += len(batch)
        return self.release(batch.node) if sum(map(len, held)) >= self.plan.gathers[batch.node] else None

    def release(self, node: int) -> Batch:
        """The batches parked at ``node`` as one batch, gathered there."""
        held = self.parked.pop(node)
        batch = Batch.cat(held)
        self.watch.pending -= len(batch)
        batch.gathered = node
        return batch

    def settle(self, batch: Batch, i: int) -> Batch | None:
        """The regions of the batch that ``prune`` does not settle before node i (None if it
        settles all); the settled ones go to the coarse cells, their area to the progress."""
        settled = self.prune(i, batch.polys, batch.values)
        if not settled.any():
            return batch
        cells = batch.polys.mask(settled)
        self.coarse.append(cells)
        self.watch.area += float(cells.measure().sum())
        if settled.all():
            return None
        keep = ~settled
        return batch.select(batch.polys.mask(keep), keep, i)

    def finished_regions(self):
        """The regions finished so far (all of them after :meth:`run`), in one array set."""
        self.finished = [join_regions(self.finished, self.plan.outputs, self.layers, self.kind)]
        return self.finished[0]

    def _finish(self, batch: Batch):
        """A finished batch on the CPU in absolute chart coordinates, with what the result keeps."""
        codes = torch.cat(batch.codes, 1) if batch.codes else torch.zeros(len(batch), 0, dtype=torch.uint8)
        return self.kind.of_cells(batch.polys, batch.values[len(self.plan.graph.nodes)], self.plan.center, codes)

    def _coarse(self, cells):
        """Settled cells (about the chart's centre) as regions with NaN maps and zero codes."""
        return self.kind.coarse(cells, self.plan.center, self.plan.outputs, code_width(self.layers))
