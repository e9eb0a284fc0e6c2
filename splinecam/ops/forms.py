"""Forms: sound symbolic bounds of an activation over cells of a slice (zonotopes, in the style
of DeepZ), and the arithmetic every op's bounds relaxation shares.

A *form* of an activation over a batch of R cells is a tensor (R, 3 + E, *shape): rows 0-2 are
an affine function of the slice coordinates (value at the uv origin, d/du, d/dv), rows 3.. the
coefficients of E noise symbols, each in [-1, 1].  It stands for the set of values
``affine(u, v) + sum_e coef_e * eps_e``.  Each op maps forms by its own ``relax`` (see
:class:`~splinecam.ops.Op`); :mod:`splinecam.analysis.bounds` walks a graph with them.

A *symbolic interval* is the cheap variant (in the style of ReluVal): a pair ``(affine, radius)``
of an affine function as above (R, 3, *shape) and a radius ``r >= 0`` per unit (R, *shape), for
the set ``affine(u, v) + [-r, r]`` with the units' noise independent.  An affine op maps the
radius by its linear part's absolute values (``AffineOp.magnitude``), so a symbolic interval
costs four rows whatever the number of relaxed units; it is looser than the form, and sound.
(For cells of dimension d, 3 is 1 + d, as for states.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..geometry import Polygons

__all__ = ["SLACK", "Relaxation", "TooManySymbols", "box_form", "corners", "form_bounds", "pad_form", "symbolic_relaxed",
           "symbolic_zonotope", "with_symbols"]

SLACK = 1e-12  # relative widening of every bound, for float64 rounding
_BLOCK_ELEMENTS = 1 << 18  # vertex values (cells x vertices x units) bounded at once


class TooManySymbols(Exception):
    """A form would have more than its ``max_symbols`` noise symbols."""


def corners(polys: Polygons) -> torch.Tensor:
    """(R, V, 1 + d) the vertices of the cells (polygons, d = 2, or polyhedra, d = 3) as rows
    ``(1, u, v[, w])``, padded by repeating one."""
    h = polys.homogeneous_padded()
    return torch.cat([h[..., -1:], h[..., :-1]], -1)


def form_bounds(cells: torch.Tensor, form: torch.Tensor, radius: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper bounds (R, U) of the forms (R, 3 + E, U) over cells given by their
    vertices as rows ``(1, u, v)``, padded by repeating one (``corners``: (R, V, 3)), widened by
    ``radius`` (R, U) if given (a symbolic interval's); in blocks of cells of about
    ``_BLOCK_ELEMENTS`` vertex values (a batch of many tiny products is several times faster
    in blocks that stay in cache)."""
    r, v, u = len(form), cells.shape[1], form.shape[2]
    step = max(1, _BLOCK_ELEMENTS // max(1, v * u))
    if r <= step:
        return _form_bounds(cells, form, radius)
    parts = [_form_bounds(cells[s : s + step], form[s : s + step], None if radius is None else radius[s : s + step])
             for s in range(0, r, step)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _form_bounds(cells: torch.Tensor, form: torch.Tensor, radius: torch.Tensor | None):
    rows = cells.shape[2]  # the affine rows: 1 + d
    at = torch.bmm(cells, form[:, :rows])
    hi, lo = at.amax(1), at.amin(1)
    noise = form[:, rows:].abs().sum(1)
    if radius is not None:
        noise += radius
    # relative to the magnitudes, plus the smallest normal number: below it (subnormal products,
    # e.g. a LeakyReLU slope of 5e-324) rounding errors are absolute, a few units of 5e-324
    slack = SLACK * (hi.abs() + lo.abs() + noise + form[:, 0].abs()) + torch.finfo(form.dtype).tiny
    return lo - noise - slack, hi + noise + slack


def pad_form(form: torch.Tensor, rows: int) -> torch.Tensor:
    """The form with zero coefficients for the symbols it does not have yet (they come last)."""
    if form.shape[1] == rows:
        return form
    pad = form.new_zeros(form.shape[0], rows - form.shape[1], *form.shape[2:])
    return torch.cat([form, pad], 1)


def with_symbols(lam: torch.Tensor, mid: torch.Tensor, rad: torch.Tensor, form: torch.Tensor,
                 max_symbols: int) -> torch.Tensor:
    """``lam * form + mid``, plus a new symbol of radius ``rad`` (R, U) for every unit where it
    is positive.  Symbols are numbered per cell (cell r's s-th such unit gets symbol s), so
    a batch gets as many new symbols as its cell with the most.  lam, mid: (R, U); form (R, n, U).
    Raises :class:`TooManySymbols` past ``max_symbols`` in all."""
    grows = rad > 0
    count = int(grows.sum(1).max()) if grows.numel() else 0
    n = form.shape[1]
    if n - 3 + count > max_symbols:
        raise TooManySymbols
    out = form.new_zeros(len(form), n + count, form.shape[2])
    torch.mul(form, lam[:, None], out=out[:, :n])
    out[:, 0] += mid
    cell, unit = torch.nonzero(grows, as_tuple=True)
    slot = grows.cumsum(1)[cell, unit] - 1
    out[cell, n + slot, unit] = rad[cell, unit]
    return out


@dataclass
class Relaxation:
    """A split op's linear relaxation over cells: output unit o (of ``shape``, flattened) lies in
    ``lam * z_j + shift +- rad`` (each (R, O)) with ``z_j`` its input unit ``unit[:, o]`` (R, O)
    (None: unit o itself)."""

    lam: torch.Tensor
    shift: torch.Tensor
    rad: torch.Tensor
    shape: tuple[int, ...]
    unit: torch.Tensor | None = None

    def picked(self, form: torch.Tensor) -> torch.Tensor:
        """The rows (R, n, O) of the input units the outputs read, of a form (R, n, U)."""
        return form if self.unit is None else form.gather(2, self.unit[:, None].expand(-1, form.shape[1], -1))


def symbolic_relaxed(relaxation: Relaxation, affine: torch.Tensor, radius: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The symbolic interval ``(affine (R, 1 + d, O), radius (R, O))`` of the output of a
    relaxation whose input's is ``(affine (R, 1 + d, U), radius (R, U))``: the affine rows times
    ``lam`` plus ``shift``, the radius times ``|lam|`` plus ``rad``."""
    if relaxation.unit is not None:
        radius = radius.gather(1, relaxation.unit)
    out = relaxation.picked(affine) * relaxation.lam[:, None]
    out[:, 0] += relaxation.shift
    return out, torch.addcmul(relaxation.rad, radius, relaxation.lam.abs())


def symbolic_zonotope(affine: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """A symbolic interval (R, 1 + d, K), (R, K) as a form (R, 1 + d + K, K): its radius a
    symbol per unit (for tests that compare units)."""
    r, rows, k = *affine.shape[:2], affine.shape[2]
    out = affine.new_zeros(r, rows + k, k)
    out[:, :rows] = affine
    out[:, rows:].diagonal(dim1=1, dim2=2).copy_(radius)
    return out


def box_form(cells: torch.Tensor, form: torch.Tensor, max_symbols: int) -> torch.Tensor:
    """The form's box: its centre, and a new symbol per unit with the unit's radius (interval
    arithmetic)."""
    flat = form.reshape(len(form), form.shape[1], -1)
    lo, hi = form_bounds(cells, flat)
    out = with_symbols(torch.zeros_like(lo), (lo + hi) / 2, (hi - lo) / 2, flat, max_symbols)
    return out.reshape(len(form), out.shape[1], *form.shape[2:])
