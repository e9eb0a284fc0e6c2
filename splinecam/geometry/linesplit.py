"""Split convex polygons by lines, each polygon by its own list of lines, until no line crosses
a piece; record on which side of each of its polygon's lines every piece lies.

Two implementations make the same pieces: the torch BSP loop (any device; :func:`bsp` with
:func:`cut` and :func:`sides`) and, for CPU tensors when numba is installed, the compiled loop of
:mod:`splinecam.geometry.compiled` (no per-round Python work).  Only the order of the pieces
differs.  Both are bounded: past their budget (and the compiled loop past ``WORK_PER_CALL``) they
hand back the pieces they have not finished as the *rest*, to be split again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from . import compiled
from .bsp import bsp
from .cut import cut, sides
from .polygons import Polygons, ragged_arange

__all__ = ["LineSplit", "UNBOUNDED", "run_compiled", "split_at_breakpoints", "split_by_lines", "split_torch"]

# bytes held per piece, per pending (piece, line) pair and per side record during a torch split
# (indices, polygons and the temporaries of one round), to keep a split within its budget
_PIECE_BYTES, _PAIR_BYTES, _LOG_BYTES = 256, 128, 32

WORK_PER_CALL = 1 << 25  # steps of one compiled call (a line at a vertex, a side copied): about 0.1 s
UNBOUNDED = 1 << 62  # the budget of a split without one


@dataclass
class LineSplit:
    """The pieces of :func:`split_by_lines`.

    pieces: (n,) finished polygons (no line crosses them); parent: (n,) the polygon each came
    from; rest, rest_parent: (q,) the pieces left unfinished at the memory budget or the work
    bound of a compiled call (lines may still cross them) and their polygons, in the order in
    which to split them again; sides_of(sel): for finished pieces ``sel`` (m,),
    one entry (piece in [0, m), line, side) per piece and line of its polygon, side in
    {-1, 0, 1} (0: the piece lies on the line within tolerance).
    """

    pieces: Polygons
    parent: torch.Tensor
    rest: Polygons
    rest_parent: torch.Tensor
    sides_of: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def split_by_lines(polys: Polygons, poly: torch.Tensor, lines: torch.Tensor, tol: torch.Tensor,
                   line_units: torch.Tensor, check: Callable[[int], None] | None = None,
                   budget: int | None = None, use_compiled: bool | None = None) -> LineSplit:
    """Cut each polygon of ``polys`` (P,) by the lines (L, 3) with ``poly`` (L,) == its index
    (``poly`` sorted), in order, each with its on-line tolerance ``tol`` (L,); the new edges
    carry ``line_units`` (L, 2).  A line splits a piece only when vertices lie strictly on both
    sides.  ``check(n)`` is called with piece counts as they grow; ``budget``: bytes the
    per-piece records may hold (the torch loop then sets unfinished pieces aside as ``rest``).
    ``use_compiled``: None picks the compiled loop for CPU tensors when numba is installed.
    """
    if use_compiled is None:
        use_compiled = compiled.AVAILABLE and polys.verts.device.type == "cpu"
    if use_compiled:
        out = _split_compiled(polys, poly, lines, tol, line_units, UNBOUNDED if budget is None else budget)
        if check is not None:
            check(len(out.pieces) + len(out.rest))
        return out
    return split_torch(polys, poly, lines, tol, line_units, check, budget)


def split_at_breakpoints(polys: Polygons, z: torch.Tensor, breakpoints: torch.Tensor, extent: torch.Tensor,
                         rtol: float, layer: int, budget: int = UNBOUNDED
                         ) -> tuple[Polygons, torch.Tensor, torch.Tensor, Polygons, torch.Tensor] | None:
    """The compiled split of an elementwise op, in one bounded call (see
    :func:`splinecam.geometry.compiled.breakpoint_split`): regions ``polys`` (R,) with unit maps
    z (R, 3, U), breakpoints (k,), the slice's half-sizes ``extent`` (2,); ``budget``: bytes the
    pieces' records (codes, sides, polygons) may hold.  Returns the finished pieces (n,), their
    regions (n,) and codes (n, U, k) bool, and the rest (q,) (pieces not finished, to split
    again in this order) and their regions (q,); None where it does not apply (no numba, not
    float64 on the CPU, not polygons).
    """
    if not (isinstance(polys, Polygons) and compiled.AVAILABLE and z.device.type == "cpu" and z.dtype == torch.float64):
        return None
    verts, offsets, units, parent, code, *rest = run_compiled(compiled.breakpoint_split,
        polys.verts.contiguous().numpy(), polys.offsets.numpy(), polys.edge_units.contiguous().numpy(),
        z.contiguous().numpy(), breakpoints.numpy(), rtol, extent.numpy(), layer, budget, WORK_PER_CALL)
    pieces = Polygons(torch.from_numpy(verts), torch.from_numpy(offsets), torch.from_numpy(units))
    rest, rest_parent = _polygons(*rest)
    return pieces, torch.from_numpy(parent), torch.from_numpy(code).reshape(len(parent), z.shape[2], -1), rest, rest_parent


def _polygons(verts, offsets, edge_units, parent) -> tuple[Polygons, torch.Tensor]:
    """Polygons and their parents from the NumPy arrays of a compiled kernel."""
    return Polygons(torch.from_numpy(verts), torch.from_numpy(offsets), torch.from_numpy(edge_units)), torch.from_numpy(parent)


def run_compiled(kernel, *args):
    """``kernel(*args)``; Ctrl-C during a compiled kernel surfaces as a plain KeyboardInterrupt
    (numba reports it as a SystemError with the interrupt attached)."""
    try:
        return kernel(*args)
    except SystemError as err:
        cause = err
        while cause is not None and not isinstance(cause, KeyboardInterrupt):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise KeyboardInterrupt from None
        raise


def _split_compiled(polys, poly, lines, tol, line_units, budget) -> LineSplit:
    """The compiled loop on NumPy views of CPU tensors: one bounded call."""
    n_lines = torch.bincount(poly, minlength=len(polys))
    line_offsets = torch.cat([n_lines.new_zeros(1), torch.cumsum(n_lines, 0)])
    rows = torch.cat([lines, tol[:, None]], 1).to(polys.verts.dtype).contiguous()
    verts, offsets, units, parent, side, *rest = run_compiled(compiled.split_by_lines,
        polys.verts.contiguous().numpy(), polys.offsets.numpy(), polys.edge_units.contiguous().numpy(),
        line_offsets.numpy(), rows.numpy(), line_units.contiguous().numpy(), budget, 0, WORK_PER_CALL)
    pieces, parent = _polygons(verts, offsets, units, parent)
    side = torch.from_numpy(side)
    counts = n_lines[parent]
    starts = torch.cumsum(counts, 0) - counts  # the entries of each piece, one per line of its polygon

    def sides_of(sel):
        piece, k = ragged_arange(counts[sel])
        entry = starts[sel][piece] + k
        return piece, line_offsets[parent[sel]][piece] + k, side[entry]

    return LineSplit(pieces, parent, *_polygons(*rest), sides_of)


def split_torch(polys, poly, lines, tol, line_units, check, budget, cut_fn=cut, sides_fn=sides,
                piece_bytes: int = _PIECE_BYTES) -> LineSplit:
    """The torch BSP loop: every piece is cut by its first pending line each round.  For cells of
    another type (polyhedra), ``cut_fn`` and ``sides_fn`` are its :func:`cut` and :func:`sides`, and
    ``piece_bytes`` what one piece holds."""
    log = _SideLog()

    def step(pieces, item, head, origin):
        res = cut_fn(pieces, lines[item], tol[item], line_units[item])
        parent = torch.cat([res.pos_parent, res.neg_parent])
        n = parent.numel()
        side = torch.ones(n, dtype=torch.int8, device=parent.device)
        side[len(res.pos):] = -1
        head = log.extend(head[parent], torch.arange(n, device=parent.device), item[parent], side)
        return type(pieces).cat([res.pos, res.neg]), parent, head

    def settle(children, piece, item, head, origin):
        has_pos, has_neg = sides_fn(children, piece, lines[item], tol[item])
        keep = has_pos & has_neg
        done = ~keep
        head = log.extend(head, piece[done], item[done], has_pos[done].to(torch.int8) - has_neg[done].to(torch.int8))
        return keep, head

    fits, max_pairs = None, None
    if budget is not None:
        def fits(n_pieces: int) -> bool:  # half the budget for the pieces and the log, half for the pairs
            return n_pieces * piece_bytes + log.size * _LOG_BYTES <= budget // 2

        max_pairs = budget // 2 // _PAIR_BYTES
    dev = polys.verts.device
    start = torch.full((len(polys),), -1, dtype=torch.int64, device=dev)
    pieces, parent, head, open_ = bsp(polys, poly, torch.arange(poly.numel(), device=dev), start, step, settle,
                                      check, fits, max_pairs)
    done = torch.nonzero(~open_).flatten()
    rest, rest_parent = pieces.mask(open_), parent[open_]
    pieces, parent, head = pieces.select(done)[0], parent[done], head[done]
    return LineSplit(pieces, parent, rest, rest_parent, lambda sel: log.read(head[sel]))


class _SideLog:
    """For every piece, the side of each line that crossed its original polygon.

    A shared linked list: an entry is (line, side in {-1, 0, 1}, previous entry),
    and a piece's *head* is its newest entry, so children share their
    ancestors' entries.  Sides are recorded when a cut is made or a line is found
    not to cross a piece, with the same classification the cuts use.
    """

    def __init__(self):
        self.line, self.side, self.prev = [], [], []
        self.size = 0

    def extend(self, head: torch.Tensor, piece: torch.Tensor, line: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
        """Record ``(line, side)`` (E,) for ``piece`` (E,), sorted by piece, whose heads are
        ``head`` (P,); returns the new heads (P,)."""
        if not piece.numel():
            return head
        idx = self.size + torch.arange(piece.numel(), device=piece.device)
        chained = torch.zeros_like(piece, dtype=torch.bool)
        chained[1:] = piece[1:] == piece[:-1]
        self.prev.append(torch.where(chained, idx - 1, head[piece]))
        self.line.append(line)
        self.side.append(side.to(torch.int8))
        last = torch.ones_like(chained)
        last[:-1] = ~chained[1:]
        head = head.clone()
        head[piece[last]] = idx[last]
        self.size += piece.numel()
        return head

    def read(self, head: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All entries of the pieces with newest entries ``head``: (piece, line, side)."""
        if not self.size or not head.numel():
            empty = head.new_zeros(0)
            return empty, empty, empty.to(torch.int8)
        if len(self.line) > 1:  # once: the log is read chunk by chunk after the split
            self.line, self.side, self.prev = [torch.cat(self.line)], [torch.cat(self.side)], [torch.cat(self.prev)]
        line, side, prev = self.line[0], self.side[0], self.prev[0]
        piece = torch.arange(head.numel(), device=head.device)
        out = []
        cur = head
        while piece.numel():
            live = cur >= 0
            piece, cur = piece[live], cur[live]
            out.append((piece, line[cur], side[cur]))
            cur = prev[cur]
        return tuple(torch.cat(parts) for parts in zip(*out))
