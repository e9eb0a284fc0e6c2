"""Sound bounds on a network's outputs over cells of a slice, propagated symbolically from the
exact affine states of the cells (zonotopes, in the style of DeepZ).

A *form* of an activation over a batch of R cells is a tensor (R, 3 + E, *shape): rows 0-2
are an affine function of the slice coordinates (value at the uv origin, d/du, d/dv), rows
3.. the coefficients of E noise symbols, each in [-1, 1].  It stands for the set of values
``affine(u, v) + sum_e coef_e * eps_e``; every value the activation takes at a point (u, v)
of the cell lies in it.  Before the first piecewise-linear op still to run, a cell's states
are exactly affine (E = 0); then

- an :class:`~splinecam.ops.AffineOp` maps forms exactly: the value row with its bias, every
  other row through its linear part (so convolutions, pooling, reshapes and functions need
  only ``linear``; no ``|W|`` is ever formed, as plain interval arithmetic would need);
- an :class:`~splinecam.ops.ElementwiseOp` keeps a unit exact when its bounds ``[l, h]`` over
  the cell hold no breakpoint strictly inside; otherwise ``y = lam * z + mid + rad * eps_new``
  with ``lam`` the chord slope ``(f(h) - f(l)) / (h - l)`` and ``[mid - rad, mid + rad]`` the
  range of ``f(z) - lam * z`` on ``[l, h]`` (attained at the ends or at breakpoints);
- a :class:`~splinecam.ops.MaxOp` output is the candidate ``j`` with the highest lower bound,
  exactly when it beats every other candidate's upper bound, else ``z_j + [0, H - l_j]``
  (``H`` the highest upper bound).

Bounds of a form over a cell: the affine part's extremes at the cell's vertices, widened by
``sum_e |coef_e|`` and by a relative slack for float64 rounding.  Ops of other kinds (user
registered split ops) have no relaxation: :class:`OutputBounds` refuses a graph that has one.

``relaxation="interval"`` is plain interval arithmetic from the same start, for comparison:
after every piecewise-linear op the form is replaced by its box (centre, and one new symbol
per unit with the unit's radius), so the next affine op computes ``W c + b +- |W| r``.
"""

from __future__ import annotations

import math

import torch

from ..errors import UnsupportedModelError
from ..geometry import Polygons
from ..ops import AffineOp, ElementwiseOp, MaxOp
from ..run.trace import Graph

_SLACK = 1e-12  # relative widening of every bound, for float64 rounding
RELAXATIONS = ("zonotope", "interval")


def corners(polys: Polygons) -> torch.Tensor:
    """(R, V, 3) the vertices of the polygons as rows ``(1, u, v)``, padded by repeating one."""
    return polys.homogeneous_padded()[..., [2, 0, 1]].contiguous()


def form_bounds(cells: torch.Tensor, form: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper bounds (R, U) of the forms (R, 3 + E, U) over cells given by their
    vertices as rows ``(1, u, v)``, padded by repeating one (``corners``: (R, V, 3))."""
    at = torch.bmm(cells, form[:, :3])
    hi, lo = at.amax(1), at.amin(1)
    noise = form[:, 3:].abs().sum(1)
    slack = _SLACK * (hi.abs() + lo.abs() + noise + form[:, 0].abs())
    return lo - noise - slack, hi + noise + slack


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
        alien = [f"{n.name} ({type(n.op).__name__})" for n in graph.nodes
                 if not isinstance(n.op, (AffineOp, ElementwiseOp, MaxOp))]
        if alien:
            raise UnsupportedModelError(
                f"no sound bound is known for {', '.join(alien)}, so boundary-first cannot prove a cell free "
                "of the boundary; use sc.partition(model, sl).decision_boundary() (or .level_set) instead.")
        self.graph, self.max_symbols, self.interval = graph, max_symbols, relaxation == "interval"
        self.last_use = graph.last_use()
        sizes = [math.prod(s) for s in shapes]
        self.block = {}  # node -> cells per block from it on
        for i in range(len(graph.nodes)):
            rest = range(i, len(graph.nodes))
            symbols = sum(sizes[j + 1] for j in rest if isinstance(graph.nodes[j].op, (ElementwiseOp, MaxOp)))
            rows = 3 + min(symbols, typical_symbols)
            self.block[i] = max(1, block_elements // (rows * max(sizes[j + 1] for j in rest)))

    def settle(self, start: int, polys: Polygons, values: dict[int, torch.Tensor], test) -> torch.Tensor:
        """(R,) bool: ``test(cells, forms)`` of the output forms of every cell (False where
        there are none), in blocks of cells of similar cost: cells are sorted by the number of
        units the split op at ``start`` relaxes in them, so that few cells are padded with
        many symbols."""
        r = len(polys)
        settled = torch.zeros(r, dtype=torch.bool, device=polys.verts.device)
        cells = corners(polys)
        z = values[self.graph.nodes[start].args[0]]
        lo, hi = form_bounds(cells, z.reshape(r, 3, -1))  # of the start op's (exact) input
        op = self.graph.nodes[start].op
        if isinstance(op, ElementwiseOp):
            bps = op.breakpoints.to(lo)
            order = torch.argsort(((lo[..., None] < bps) & (bps < hi[..., None])).any(-1).sum(1), stable=True)
        else:
            order = torch.arange(r, device=lo.device)
        for s in range(0, r, self.block[start]):
            sel = order[s : s + self.block[start]]
            forms = self.output_forms(start, cells[sel], {a: v[sel] for a, v in values.items()}, (lo[sel], hi[sel]))
            if forms is not None:
                settled[sel] = test(cells[sel], forms)
        return settled

    def output_forms(self, start: int, cells: torch.Tensor, values: dict[int, torch.Tensor],
                     first: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor | None:
        """Forms (R, 3 + E, K) of the flattened output over the cells ``cells`` (R, V, 3) (see
        :func:`corners`) whose live exact states before node ``start`` (a split op) are
        ``values`` (value index -> (R, 3, *shape)); ``first``: the bounds (R, U) of that op's
        input if known.  None when the symbols pass ``max_symbols``."""
        nodes = self.graph.nodes
        forms = dict(values)
        total = 3  # rows of the symbols made so far: every form's rows are a prefix of them
        for i in range(start, len(nodes)):
            node = nodes[i]
            args = [forms[a] for a in node.args]
            op = node.op
            if isinstance(op, AffineOp):
                rows = max(a.shape[1] for a in args)
                out = op.push(*[_pad(a, rows) for a in args])
            elif isinstance(op, (ElementwiseOp, MaxOp)):
                try:  # new symbols go after all earlier ones, also those of parallel branches
                    relax = _elementwise if isinstance(op, ElementwiseOp) else _max
                    out = relax(op, _pad(args[0], total), cells, self.max_symbols, first if i == start else None)
                    if self.interval:
                        out = _box(cells, out, self.max_symbols)
                except _TooManySymbols:
                    return None
                total = out.shape[1]
            forms[i + 1] = out
            for a in node.args:
                if self.last_use[a] == i:
                    forms.pop(a, None)
        out = forms[len(nodes)]
        return out.reshape(len(out), out.shape[1], -1)


def _pad(form: torch.Tensor, rows: int) -> torch.Tensor:
    """The form with zero coefficients for the symbols it does not have yet (they come last)."""
    if form.shape[1] == rows:
        return form
    pad = form.new_zeros(form.shape[0], rows - form.shape[1], *form.shape[2:])
    return torch.cat([form, pad], 1)


class _TooManySymbols(Exception):
    """A form would have more than ``max_symbols`` symbols."""


def _with_symbols(lam: torch.Tensor, mid: torch.Tensor, rad: torch.Tensor, form: torch.Tensor,
                  max_symbols: int) -> torch.Tensor:
    """``lam * form + mid``, plus a new symbol of radius ``rad`` (R, U) for every unit where it
    is positive.  Symbols are numbered per cell (cell r's s-th such unit gets symbol s), so
    a batch gets as many new symbols as its cell with the most.  lam, mid: (R, U); form (R, n, U).
    Raises :class:`_TooManySymbols` past ``max_symbols`` in all."""
    grows = rad > 0
    count = int(grows.sum(1).max()) if grows.numel() else 0
    n = form.shape[1]
    if n - 3 + count > max_symbols:
        raise _TooManySymbols
    out = form.new_zeros(len(form), n + count, form.shape[2])
    torch.mul(form, lam[:, None], out=out[:, :n])
    out[:, 0] += mid
    cell, unit = torch.nonzero(grows, as_tuple=True)
    slot = grows.cumsum(1)[cell, unit] - 1
    out[cell, n + slot, unit] = rad[cell, unit]
    return out


def _box(cells: torch.Tensor, form: torch.Tensor, max_symbols: int) -> torch.Tensor:
    """The form's box: its centre, and a new symbol per unit with the unit's radius."""
    flat = form.reshape(len(form), form.shape[1], -1)
    lo, hi = form_bounds(cells, flat)
    out = _with_symbols(torch.zeros_like(lo), (lo + hi) / 2, (hi - lo) / 2, flat, max_symbols)
    return out.reshape(len(form), out.shape[1], *form.shape[2:])


def _elementwise(op: ElementwiseOp, form: torch.Tensor, cells: torch.Tensor, max_symbols: int,
                 bounds: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    r, n, shape = len(form), form.shape[1], form.shape[2:]
    flat = form.reshape(r, n, -1)
    lo, hi = form_bounds(cells, flat) if bounds is None else bounds
    bps = op.breakpoints.to(lo)
    inside = ((lo[..., None] < bps) & (bps < hi[..., None])).any(-1)  # a breakpoint inside: relax

    if op.is_relu:  # the chord from (l, 0) to (h, h): y = lam * z - lam * l / 2 +- lam * l / 2
        lam = torch.where(inside, hi / torch.where(inside, hi - lo, torch.ones_like(lo)), (lo >= 0).to(lo))
        rad = torch.where(inside, -lam * lo / 2 * (1 + _SLACK), torch.zeros_like(lo))
        out = _with_symbols(lam, rad, rad, flat, max_symbols)
        return out.reshape(r, out.shape[1], *shape)

    def f(z):
        return op.forward(z.reshape(r, *shape)).reshape(r, -1)

    mid = (lo + hi) / 2
    slope, intercept = op.apply_code(mid.reshape(r, *shape), op.above(mid.reshape(r, *shape)))
    slope, intercept = slope.reshape(r, -1), intercept.reshape(r, -1)
    f_lo, f_hi = f(lo), f(hi)
    width = torch.where(inside, hi - lo, torch.ones_like(lo))
    chord = (f_hi - f_lo) / width
    dev = torch.stack([f_lo - chord * lo, f_hi - chord * hi]
                      + [f(torch.minimum(torch.maximum(b, lo), hi)) - chord * torch.minimum(torch.maximum(b, lo), hi)
                         for b in bps])
    d_lo, d_hi = dev.amin(0), dev.amax(0)
    rad = (d_hi - d_lo) / 2
    rad = rad + _SLACK * (d_hi.abs() + d_lo.abs() + chord.abs() * (hi.abs() + lo.abs()))
    lam = torch.where(inside, chord, slope)
    shift = torch.where(inside, (d_hi + d_lo) / 2, intercept)
    out = _with_symbols(lam, shift, torch.where(inside, rad, torch.zeros_like(rad)), flat, max_symbols)
    return out.reshape(r, out.shape[1], *shape)


def _max(op: MaxOp, form: torch.Tensor, cells: torch.Tensor, max_symbols: int,
         bounds: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    r, n = form.shape[:2]
    index, out_shape = op.windows(tuple(form.shape[2:]))
    index = index.to(form.device)
    flat = form.reshape(r, n, -1)
    lo, hi = form_bounds(cells, flat) if bounds is None else bounds
    valid = index >= 0
    safe = index.clamp_min(0)
    c_lo = lo[:, safe].masked_fill(~valid, -torch.inf)  # (R, O, k)
    c_hi = hi[:, safe].masked_fill(~valid, -torch.inf)
    best = c_lo.argmax(-1, keepdim=True)  # (R, O, 1)
    best_lo = c_lo.gather(-1, best)[..., 0]
    others_hi = c_hi.scatter(-1, best, -torch.inf).amax(-1)
    top_hi = torch.maximum(others_hi, c_hi.gather(-1, best)[..., 0])
    gap = torch.where(best_lo >= others_hi, torch.zeros_like(best_lo), top_hi - best_lo)
    chosen = safe[torch.arange(index.shape[0], device=form.device)[None], best[..., 0]]  # (R, O) input unit
    picked = flat.gather(2, chosen[:, None].expand(-1, n, -1))
    half = gap / 2 * (1 + _SLACK)
    out = _with_symbols(torch.ones_like(half), half, half, picked, max_symbols)
    return out.reshape(r, out.shape[1], *out_shape)
