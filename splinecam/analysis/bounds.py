"""Sound bounds on a network's outputs over cells of a slice, propagated symbolically from the
exact affine states of the cells (zonotopes, in the style of DeepZ): the forms of
:mod:`splinecam.ops.forms`, each op mapping them by its own ``relax``.

Before the first piecewise-linear op still to run, a cell's states are exactly affine (no
noise symbols); then every op maps the forms of its inputs to a form of its output that holds
every value the output takes in the cell: an affine op exactly, an elementwise op by the chord
of each unit that can cross a breakpoint, a max op by its surely winning candidate (see their
``relax``).  Bounds of a form over a cell: the affine part's extremes at the cell's vertices,
widened by ``sum_e |coef_e|`` and by a relative slack for float64 rounding.  Ops with no
relaxation (user registered split ops) make :class:`OutputBounds` refuse the graph.

``relaxation="interval"`` is plain interval arithmetic from the same start, for comparison:
after every piecewise-linear op the form is replaced by its box (centre, and one new symbol
per unit with the unit's radius), so the next affine op computes ``W c + b +- |W| r``.
"""

from __future__ import annotations

import math

import torch

from ..errors import UnsupportedModelError
from ..geometry import Polygons
from ..ops.forms import TooManySymbols, box_form, corners, form_bounds, symbolic_zonotope
from ..run.trace import Graph

__all__ = ["OutputBounds", "RELAXATIONS"]

RELAXATIONS = ("zonotope", "interval")


class OutputBounds:
    """Propagates the forms of cells from a split node to the graph's output.

    shapes: the per-sample shape of every graph value (input first); relaxation: see the
    module doc; max_symbols: a block of cells whose noise symbols would pass it gets no
    bounds (memory: forms are (cells, 3 + symbols, units)); block_elements: the
    number of form entries held at once (small enough to stay in cache: the work is
    memory-bound), which sets how many cells go together, counting
    ``typical_symbols`` symbols per cell (most cells of a fine partition have few relaxed
    units; the cells are sorted by that count, so those with many come last, together).
    """

    def __init__(self, graph: Graph, shapes: list[tuple[int, ...]], relaxation: str = "zonotope",
                 max_symbols: int = 2048, block_elements: int = 1 << 20, typical_symbols: int = 32):
        if relaxation not in RELAXATIONS:
            raise ValueError(f"bounds must be one of {RELAXATIONS}, got {relaxation!r}.")
        alien = [f"{n.name} ({type(n.op).__name__})" for n in graph.nodes if not n.op.relaxable]
        if alien:
            raise UnsupportedModelError(
                f"no sound bound is known for {', '.join(alien)}, so boundary-first cannot prove a cell free "
                "of the boundary; use sc.partition(model, sl).decision_boundary() (or .level_set) instead.")
        self.graph, self.max_symbols, self.interval = graph, max_symbols, relaxation == "interval"
        self.symbolic = True  # until an op turns out to have no symbolic interval
        sizes = [math.prod(s) for s in shapes]
        self.block = {}  # node -> cells per block from it on
        for i in range(len(graph.nodes)):
            rest = range(i, len(graph.nodes))
            symbols = sum(sizes[j + 1] for j in rest if graph.nodes[j].op.splits)
            rows = 3 + min(symbols, typical_symbols)
            self.block[i] = max(1, block_elements // (rows * max(sizes[j + 1] for j in rest)))

    def settle(self, start: int, polys: Polygons, values: dict[int, torch.Tensor], test) -> torch.Tensor:
        """(R,) bool: ``test(cells, forms)`` of the output bounds of every cell (False where
        there are none): first the symbolic intervals (where every op has them), then the forms
        of the cells those left, in blocks of cells of similar cost (sorted by the number of
        units the split op at ``start`` relaxes in them, so that few cells are padded with many
        symbols)."""
        r = len(polys)
        cells = corners(polys)
        z = values[self.graph.nodes[start].args[0]]
        lo, hi = form_bounds(cells, z.reshape(r, cells.shape[2], -1))  # of the start op's (exact) input
        settled = torch.zeros(r, dtype=torch.bool, device=cells.device)
        if self.symbolic and not self.interval:  # in the cells' order: its cost does not depend on the relaxed units
            for sel in torch.arange(r, device=cells.device).split(self.block[start]):
                out = self.output_boxes(start, cells[sel], {a: v[sel] for a, v in values.items()}, (lo[sel], hi[sel]))
                if out is not None:
                    settled[sel] = test(cells[sel], symbolic_zonotope(*out))
        todo = torch.nonzero(~settled)[:, 0]
        todo = todo[torch.argsort(self.graph.nodes[start].op.relax_cost(lo[todo], hi[todo]), stable=True)]
        for sel in todo.split(self.block[start]) if len(todo) else ():
            out = self.output_forms(start, cells[sel], {a: v[sel] for a, v in values.items()}, (lo[sel], hi[sel]))
            if out is not None:
                settled[sel] = test(cells[sel], out)
        return settled

    def output_boxes(self, start: int, cells: torch.Tensor, values: dict[int, torch.Tensor],
                     first: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The symbolic interval ``(affine (R, 1 + d, K), radius (R, K))`` of the flattened output
        (as :meth:`output_forms`; see :mod:`splinecam.ops.forms`), or None where an op has none."""
        boxes = {a: (v, v.new_zeros(len(v), *v.shape[2:])) for a, v in values.items()}
        for i, node, args in self.graph.walk(boxes, start):
            out = node.op.relax_symbolic(args, cells, first if i == start else None)
            if out is None:
                self.symbolic = False
                return None
            boxes[i + 1] = out
        affine, radius = boxes[len(self.graph.nodes)]
        return affine.reshape(len(affine), affine.shape[1], -1), radius.reshape(len(radius), -1)

    def output_forms(self, start: int, cells: torch.Tensor, values: dict[int, torch.Tensor],
                     first: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor | None:
        """Forms (R, 3 + E, K) of the flattened output over the cells ``cells`` (R, V, 3) (see
        :func:`corners`) whose live exact states before node ``start`` (a split op) are
        ``values`` (value index -> (R, 3, *shape)); ``first``: the bounds (R, U) of that op's
        input if known.  None when the symbols pass ``max_symbols``."""
        forms = dict(values)
        total = cells.shape[2]  # rows (affine, then symbols) made so far: every form's rows are a prefix of them
        for i, node, args in self.graph.walk(forms, start):
            try:  # new symbols go after all earlier ones, also those of parallel branches
                out = node.op.relax(args, cells, total, self.max_symbols, first if i == start else None)
                if node.op.splits:
                    if self.interval:
                        out = box_form(cells, out, self.max_symbols)
                    total = out.shape[1]
            except TooManySymbols:
                return None
            forms[i + 1] = out
        out = forms[len(self.graph.nodes)]
        return out.reshape(len(out), out.shape[1], -1)
