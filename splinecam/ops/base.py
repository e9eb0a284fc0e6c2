"""The two kinds of op and what they owe the engine.

Every op acts on a batch of region *states*: each activation tensor is an
affine function of the slice coordinates inside a region, stored as
``(R, 3, *shape)``: the value at the reference point and the two tangents
(d/du, d/dv).

- :class:`AffineOp` maps states: the value with its bias, the tangents with
  its linear part only.
- :class:`SplitOp` (piecewise-linear) splits regions: :meth:`SplitOp.split`
  cuts a batch of region polygons into pieces on which the op is affine and
  returns a :class:`Split` that pushes the states of any chunk of pieces
  through the fixed piece of the op and packs their activation codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..geometry import Polygons
from .forms import Relaxation, form_bounds, pad_form, symbolic_relaxed, with_symbols

__all__ = ["AffineOp", "Live", "Op", "PIECE_BYTES", "Split", "SplitContext", "SplitOp", "pack_bits"]

PIECE_BYTES = 256  # bytes a piece of a split holds besides its states and codes (polygon, indices)


class Op:
    """Base class of all ops.  ``splits``: whether the op splits regions (a :class:`SplitOp`) or
    maps their states (an :class:`AffineOp`); ``relaxable``: whether it has a sound bounds
    relaxation (:meth:`relax`), which boundary-first needs of every op of a model."""

    splits = False
    relaxable = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Plain evaluation on a batch of inputs (B, *shape)."""
        raise NotImplementedError

    def relax(self, forms: list[torch.Tensor], cells: torch.Tensor, symbols: int, max_symbols: int,
              first: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """The form (R, 3 + E', *shape_out) of the output over the cells ``cells`` (R, V, 3)
        (:func:`~splinecam.ops.forms.corners`), given the forms of the inputs (R, 3 + E_i, *shape_i)
        (see :mod:`splinecam.ops.forms`): it holds every value the output takes in a cell.
        ``symbols``: the rows of the symbols made so far (new ones go after them); ``first``:
        the bounds (R, U) of the input, where known; raises
        :class:`~splinecam.ops.forms.TooManySymbols` past ``max_symbols``."""
        raise NotImplementedError(f"{type(self).__name__} has no bounds relaxation")

    def relax_symbolic(self, boxes: list[tuple[torch.Tensor, torch.Tensor]], cells: torch.Tensor,
                       first: tuple[torch.Tensor, torch.Tensor] | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """As :meth:`relax`, on symbolic intervals ``(affine (R, 3, *shape_i), radius (R,
        *shape_i))`` (see :mod:`splinecam.ops.forms`): looser and cheaper; None where the op has
        none (boundary first then uses the forms alone)."""
        return None


class AffineOp(Op):
    """An affine map ``y = linear(*xs) + bias`` of one or more activations.

    ``linear`` and the bias are the op's single source of truth: :meth:`forward`, :meth:`push`
    and the bounds (:mod:`splinecam.analysis.bounds`) all use them and nothing else, so a subclass gives
    ``linear`` and ``bias`` (or :meth:`offset`, for a bias whose shape depends on the input's
    number of dims) and may not override ``forward`` or ``push``.
    """

    _FINAL = ("forward", "push")
    relaxable = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = [name for name in AffineOp._FINAL if name in vars(cls)]
        if own:
            raise TypeError(f"{cls.__name__} overrides {', '.join(own)} of AffineOp: give linear() and bias() "
                            "(or offset()) instead, so that forward, push and the bounds agree by construction.")

    def linear(self, *xs: torch.Tensor) -> torch.Tensor:
        """The linear part on batches (B, *shape_i) -> (B, *shape_out)."""
        raise NotImplementedError

    def bias(self) -> torch.Tensor | None:
        """The bias, broadcastable to one output (*shape_out), or None."""
        return None

    def offset(self, ndim: int) -> torch.Tensor | None:
        """The bias, broadcastable to a batch of outputs with ``ndim`` dims (B, *shape_out), or None:
        what forward, push and the bounds add.  Default: :meth:`bias`."""
        return self.bias()

    def cost(self, in_shapes: list[tuple[int, ...]], out_shape: tuple[int, ...]) -> int:
        """About the multiply-adds of :meth:`linear` on one sample of shapes ``in_shapes`` ->
        ``out_shape`` (what composing ops saves is counted in it); default: one per number in
        and out (a reshape, a pool, a sum)."""
        return sum(math.prod(s) for s in in_shapes) + math.prod(out_shape)

    def then(self, nxt: "AffineOp", shape: tuple[int, ...]) -> "AffineOp | None":
        """This op followed by ``nxt`` (one input each; ``shape``: this op's output per sample)
        as one op with precomputed weights, where the pair has a closed form; default None."""
        return None

    def absorbs(self, shape: tuple[int, ...]) -> bool:
        """Whether :meth:`absorb` can take in a chain of ops before this one whose output, this
        op's one input, has shape ``shape`` per sample; default False."""
        return False

    def absorb(self, ops: list["AffineOp"], shape: tuple[int, ...]) -> "AffineOp":
        """This op after the single-input ops ``ops`` (applied in order to inputs of shape
        ``shape`` per sample) as one op (where :meth:`absorbs` says it can)."""
        raise NotImplementedError

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        y = self.linear(*xs)
        b = self.offset(y.dim())
        return y if b is None else y + b

    def push(self, *rows: torch.Tensor) -> torch.Tensor:
        """Rows (R, n, *shape_i) -> (R, n, *shape_out): row 0 (a value) through the whole map,
        rows 1.. (tangents, noise coefficients) through the linear part only.  States are n = 3."""
        r, n = rows[0].shape[:2]
        out = self.linear(*[s.reshape(r * n, *s.shape[2:]) for s in rows])
        out = out.reshape(r, n, *out.shape[1:])
        b = self.offset(out.dim() - 1)
        if b is not None:
            out[:, 0].add_(b)
        return out

    def relax(self, forms, cells, symbols, max_symbols, first=None):
        """Exact: the value row with the bias, every other row through the linear part."""
        rows = max(f.shape[1] for f in forms)
        return self.push(*[pad_form(f, rows) for f in forms])

    def magnitude(self, *radii: torch.Tensor) -> torch.Tensor | None:
        """The linear part with each coefficient replaced by its absolute value, on batches of
        radii (B, *shape_i) >= 0 -> (B, *shape_out): it bounds ``|linear(*xs)|`` for ``|xs_i| <=
        radii_i``; None where the op does not know it (default)."""
        return None

    def relax_symbolic(self, boxes, cells, first=None):
        """The affine rows through :meth:`push`, the radius through :meth:`magnitude`."""
        radius = self.magnitude(*[r for _, r in boxes])
        return None if radius is None else (self.push(*[a for a, _ in boxes]), radius)


@dataclass
class SplitContext:
    """What a split needs from the run.

    rtol: relative on-line tolerance; extent: (2,) half-sizes of the slice
    polygon around the uv origin of the states; layer: index of the op among
    the split ops (the first entry of the edge units it creates); check(n):
    raises when n regions (at least) pass the run's region limit or the time is
    up, and shows progress (call it between bounded steps); budget: bytes the
    per-piece records of one split may hold at once (past it, the split returns
    the pieces it has not finished as ``Split.rest``); cache: a dict the op may
    use for data that depends only on shapes during one run.
    """

    rtol: float
    extent: torch.Tensor
    layer: int
    check: Callable[[int], None]
    budget: int
    cache: dict = field(default_factory=dict)


@dataclass
class Split:
    """The pieces of a batch of regions at a split op.

    pieces: (n,) polygons; parent: (n,) the region each came from;
    apply(z, sel, inplace): for the pieces ``sel`` (m,), given their input
    states z (m, 3, *shape_in) (overwritten if ``inplace``), returns their output
    states (m, 3, *shape_out) and packed activation codes (m, ceil(bits / 8)) uint8;
    rest, rest_parent: pieces (q,) of the regions that the split has not finished
    (it stopped at its memory budget or its bound on work) and the region of each:
    the engine splits them again at the same op, in this order (so the split
    chooses the order that finishes compact areas first); gather(z, sel): optional,
    ``apply(z[parent[sel]], sel, True)`` from the states z (R, 3, *shape_in) of the
    split's regions, in one pass.
    """

    pieces: Polygons
    parent: torch.Tensor
    apply: Callable[[torch.Tensor, torch.Tensor, bool], tuple[torch.Tensor, torch.Tensor]]
    rest: Polygons | None = None
    rest_parent: torch.Tensor | None = None
    gather: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None

    def __len__(self) -> int:
        return len(self.pieces)


class SplitOp(Op):
    """A continuous piecewise-linear op: regions split where it changes pieces.  ``any_cells``:
    whether :meth:`split` takes cells of any dimension (the cell interface of
    :mod:`splinecam.geometry.cells`; a path needs it) or polygons only; ``volumes``: whether it
    takes polyhedra too (a volume needs it or ``any_cells``); ``intervals``: whether it takes
    the intervals of a polyline's straight legs too (a polyline needs it or ``any_cells``)."""

    splits = True
    any_cells = False
    volumes = False
    intervals = False

    def layer_size(self, in_shape: tuple[int, ...]) -> tuple[int, int]:
        """(units, code bits) of the op on inputs of one sample of shape ``in_shape``."""
        raise NotImplementedError

    def split(self, polys: Polygons, z: torch.Tensor, ctx: SplitContext) -> Split:
        """Split the regions ``polys`` (R,) whose input states are z (R, 3, *shape_in)."""
        raise NotImplementedError

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """(B, bits) bool activation code of a batch of inputs (B, *shape)."""
        raise NotImplementedError

    def ambiguous(self, x: torch.Tensor, atol: float) -> torch.Tensor:
        """(B, bits) bool: code bits of a batch of inputs that lie within ``atol`` of a tie."""
        raise NotImplementedError

    def relax_cost(self, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """(R,) how many units :meth:`relax` relaxes in each cell, given its input's bounds
        (R, U) there (the bounds order cells by it, to batch those of similar cost); default 0."""
        return lo.new_zeros(len(lo), dtype=torch.long)

    def linear_relaxation(self, lo: torch.Tensor, hi: torch.Tensor, shape: tuple[int, ...]) -> Relaxation:
        """The op's relaxation over cells where its input (one sample of shape ``shape``) lies
        within the bounds ``[lo, hi]`` (R, U): the one rule of :meth:`relax` and
        :meth:`relax_symbolic` (an op with ``relaxable`` gives it, or overrides :meth:`relax`)."""
        raise NotImplementedError(f"{type(self).__name__} has no bounds relaxation")

    def relax(self, forms, cells, symbols, max_symbols, first=None):
        """:meth:`linear_relaxation` of the input's bounds, each relaxed unit a new symbol."""
        form = pad_form(forms[0], symbols)
        flat = form.reshape(len(form), form.shape[1], -1)
        lo, hi = form_bounds(cells, flat) if first is None else first
        rel = self.linear_relaxation(lo, hi, tuple(form.shape[2:]))
        out = with_symbols(rel.lam, rel.shift, rel.rad, rel.picked(flat), max_symbols)
        return out.reshape(len(form), out.shape[1], *rel.shape)

    def relax_symbolic(self, boxes, cells, first=None):
        """:meth:`linear_relaxation` of the input's bounds (None where the op overrides
        :meth:`relax` only)."""
        if type(self).linear_relaxation is SplitOp.linear_relaxation:
            return None
        affine, radius = boxes[0]
        r, shape = len(affine), tuple(affine.shape[2:])
        affine, radius = affine.reshape(r, affine.shape[1], -1), radius.reshape(r, -1)
        lo, hi = form_bounds(cells, affine, radius) if first is None else first
        rel = self.linear_relaxation(lo, hi, shape)
        affine, radius = symbolic_relaxed(rel, affine, radius)
        return affine.reshape(r, affine.shape[1], *rel.shape), radius.reshape(r, *rel.shape)

    def crossing_lines(self, z: torch.Tensor, polys: Polygons, extent: torch.Tensor, rtol: float
                       ) -> torch.Tensor | None:
        """For :func:`splinecam.estimate`: the lines (L, 3) ``a*u + b*v + c`` along which the op
        splits the one region ``polys`` (about the uv origin) whose input state is z (1, 3, *shape),
        or None where the op's cells are not cut by lines (max-type); default None."""
        return None


def pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """(R, n) bool -> (R, ceil(n / 8)) uint8, most significant bit first (as ``np.packbits``)."""
    r, n = bits.shape
    bits = torch.nn.functional.pad(bits, (0, -n % 8)).reshape(r, -1, 8).to(torch.uint8)
    weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8, device=bits.device)
    return (bits * weights).sum(-1, dtype=torch.uint8)


class Live:
    """An activation among the arguments of a traced call: ``example`` is a
    (B, *shape) batch of its values, ``slot`` its position among the activations."""

    def __init__(self, example: torch.Tensor, slot: int):
        self.example, self.slot = example, slot

    def __repr__(self) -> str:
        return f"Live(shape={tuple(self.example.shape[1:])})"


