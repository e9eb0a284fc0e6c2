"""The certified partition of a slice for a network whose first op is a sine encoding.

The model is an ``nn.Sequential`` whose first leaf is a sine encoding ``e = sin(F x + phi)`` (a
module whose ``sin_phases()`` gives ``(F (J, D), phi (J,))``, or ``(F, phi, k)`` where the first k
features are ``F x + phi`` itself (the raw input passed on), as ``sc.nn.PositionalEncoding`` and
``sc.nn.FourierFeatures`` with ``kind="sin"`` do; a cosine is a phase of pi/2) followed by a
plain MLP (Linear, ReLU, LeakyReLU, Identity, eval Dropout).  On the slice ``x = o + B p`` the
encoding is ``sin(A p + b)`` (:class:`~splinecam.geometry.Waves`), and on the set where the
activation pattern is fixed every pre-activation and output is ``M e + m``: a trigonometric sum
of ``p``, exactly affine in ``e``.

:func:`certify` subdivides the slice box (a quadtree) until each cell is proven to be one of:

- *uniform*: sound bounds of every unit over the cell exclude 0, layer after layer, so the whole
  cell has one activation pattern;
- *one curve*: exactly one unit ``z`` is undetermined, every other unit (and each unit of the
  later layers on both sides of ``z = 0``) has a proven sign, and ``z``'s zero set in the cell
  is proven to be at most one arc (:meth:`_Curve.prove`: ``z`` strictly monotone along one axis
  over the cell, 0 outside the bounds of ``dz/du`` or of ``dz/dv``, and at most one zero on
  each cell side, its bound excluding 0 there or its derivative along the side doing so).  The
  arc is a graph over the other axis that splits the cell into two pieces with the two
  patterns; it is replaced by a polyline whose vertices are roots (to tol/4) at nodes spaced so
  that the chord error bound ``|g''| h^2 / 8`` (from sound bounds of the second derivatives) is
  at most tol/2;
- *junction*: exactly two curves, A (unit a) and C (unit c, of a's level, or of a later level:
  then c's pre-activation is a different trig sum ``z_c^-``, ``z_c^+`` on each side of A, equal
  on A), with every other unit on all four sign branches proven.  Proven: A's zero set and each
  open ``z_c^+-`` zero set is one arc as above; ``det [grad z_a; grad z_c^+-]`` excludes 0 over
  the cell (interval bounds), so ``c`` is strictly monotone along A and meets A at most once;
  c's sign at A's two ends is proven by sound bounds on a box of 2**-40 of the cell around each
  end.  Signs that differ: the curves cross exactly once, at X (found on A to within tol/4, by
  Newton's method checked by a sign change of c, else by bisection along A), each side's C
  leaves X once towards that side (its end on that side of A); the cell's four faces meet at X
  and are fanned from it.  Equal signs: the curves do not meet; C on each side of A is that
  side's zero arc of ``z_c^+-`` if both its ends lie on that side, and the chords of A and C cut
  the cell into convex faces.  Each half-arc (X to an end) or whole arc is one chord within
  tol/2 of it (the chord error bound again), else the cell is split.  Every face's pattern
  follows from the proven signs: z_a's side, and c's sign at A's end flipped at each end of C
  met along the border.

The polylines are within ``tol`` of the true curves (Hausdorff distance), the pieces' patterns
are the true patterns off a ``tol``-band around the curves, and the regions (joined across cell
sides where their patterns meet, see :func:`_regions`), their count and their adjacency are
those of the true partition; all up to float64 rounding of the roots and of the signs at the
points where the border's roots are sought.  Triple points (three curves through one point)
and tangencies are not certified.

A cell still unproven at the minimum cell size (``2**-26`` of the slice box's side by default) is
*uncertified*: it is kept as one piece with the pattern at its centre, and listed with the reason
(:data:`UNCERTIFIED`); the regions that meet there are joined without proof.  Three curves
through one point, a tangency, or a singular point of a unit's zero set are never proven;
curves that only come close are separated by the subdivision.

The result's rows are convex *pieces* (a cell, a strip of a cell on one side of a polyline
segment, or a triangle of a junction's fan); ``region`` gives each piece's region: pieces of the
same pattern joined across shared cell sides (the connected components of the pattern sets).
With a decision function (one output, or the difference of two), its zero set is one more
"unit" of the walk: its polylines are certified like the others and each piece records its side.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import nn

from ..errors import StoppedEarly, UnsupportedModelError
from ..geometry.trig import Waves, box_bounds
from ..slices import Slice
from .chain import leaf_modules
from .regions import LayerInfo
from .watch import Watch

try:
    from numba import njit
except ImportError:  # numba is optional: the walk then runs in Python (slowly)
    njit = None

__all__ = ["BORDER", "DECISION", "INSIDE", "UNCERTIFIED", "CurvedPieces", "SineNet", "certify", "read_sine_net", "sine_encoding"]

BORDER, INSIDE, DECISION = -1, -2, -3  # edge labels: on the slice border; between two pieces of one
# pattern; along the decision boundary (a unit's polyline is labelled (layer, unit))
UNCERTIFIED = (  # why a cell is uncertified, by code (CurvedPieces.reasons)
    "three or more curves meet in it",
    "one unit's zero set in it is not proven to be one arc (a singular point, or one where it turns back)",
    "two curves in it are not proven to cross once or not at all (they touch, or run nearly parallel)",
)
_MAX_NODES = 256  # polyline nodes per cell (more: the cell is split instead)
_BATCH = 64  # cells whose first level is bounded at once


def sine_encoding(model) -> nn.Module | None:
    """The sine encoding that ``model`` starts with (a module whose ``sin_phases()`` gives its
    phases, e.g. ``sc.nn.PositionalEncoding(kind="sin")``), or None."""
    if type(model) is not nn.Sequential:
        return None
    first = next(iter(leaf_modules(model)), (None, None))[1]
    return first if callable(getattr(first, "sin_phases", None)) and first.sin_phases() is not None else None


@dataclass(frozen=True)
class SineNet:
    """A sine encoding and the MLP after it, in float64, on slice coordinates.

    waves: the encoding's phases on the slice; hidden: (W (n, m), b (n,), negative slope) of each
    activation layer's pre-activations; out: (W (K, m), b (K,)) the outputs after the last one;
    decision: (c (K,), level) the decision function ``c @ out - level`` whose zero set is
    certified (one output: the output; two: their difference), or None; names: the layers'.
    """

    waves: Waves
    hidden: list
    out: tuple
    decision: tuple | None
    names: list

    @property
    def layers(self) -> list[LayerInfo]:
        return [LayerInfo(name, len(b), len(b)) for name, (_, b, _) in zip(self.names, self.hidden)]

    def first_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """(M, m) of the first level's units over the encoding."""
        if self.hidden:
            return self.hidden[0][0], self.hidden[0][1]
        return self._decision_of(*self.out)

    def _decision_of(self, M, m):
        c, level = self.decision
        return (c @ M)[None], np.array([c @ m - level])

    def next_maps(self, level: int, M: np.ndarray, m: np.ndarray, on: np.ndarray):
        """(M, m) of level ``level + 1`` given the maps and states (on: z > 0) of level ``level``;
        the last hidden level leads to the outputs' decision function."""
        s = np.where(on, 1.0, self.hidden[level][2])
        M, m = s[:, None] * M, s * m
        W, b = self.hidden[level + 1][:2] if level + 1 < len(self.hidden) else self.out
        M, m = W @ M, W @ m + b
        return (M, m) if level + 1 < len(self.hidden) else self._decision_of(M, m)

    @cached_property
    def stacked(self) -> tuple:
        """The levels as flat arrays for the compiled walk: (M0 (n0, J), m0 (n0,), W (flat), w_at
        (L,) where level l's W (n_l, n_{l-1}) starts, b (flat), b_at (L,), sizes (L,), slopes
        (L,)); level l + 1's maps are ``W (s M)``, ``W (s m) + b`` (see :meth:`next_maps`)."""
        M0, m0 = self.first_maps()
        Ws, bs, sizes = [np.zeros(0)], [np.zeros(0)], [len(m0)]
        for level in range(self.levels - 1):
            W, b = self.hidden[level + 1][:2] if level + 1 < len(self.hidden) else self.out
            if level + 1 == len(self.hidden):
                W, b = self._decision_of(W, b)
            Ws.append(np.ascontiguousarray(W, np.float64).ravel())
            bs.append(np.asarray(b, np.float64))
            sizes.append(len(b))
        at = lambda parts: np.cumsum([0] + [len(p) for p in parts[:-1]]).astype(np.int64)  # noqa: E731
        slopes = np.array([self.hidden[level][2] if level < len(self.hidden) else 0.0 for level in range(self.levels)])
        return (np.ascontiguousarray(M0, np.float64), np.asarray(m0, np.float64), np.concatenate(Ws), at(Ws),
                np.concatenate(bs), at(bs), np.array(sizes, np.int64), slopes)

    @cached_property
    def spans(self) -> list:
        """[(start, end)] of each level's units in a pattern (the decision's as one more level)."""
        ends = np.cumsum(self.stacked[6]).tolist()
        return list(zip([0] + ends[:-1], ends))

    @property
    def levels(self) -> int:
        return len(self.hidden) + (self.decision is not None)

    def flat(self) -> tuple[dict, dict]:
        """(arrays, meta) that :meth:`from_flat` reads back: the waves (A (J, 2), b (J,)), every
        layer's weights and biases concatenated (hidden layers, then the outputs), the decision
        row (K,) (empty: none); meta: linear, slopes, outputs K, the decision level."""
        layers = [*self.hidden, (*self.out, 0.0)]
        arrays = dict(wave_A=self.waves.A, wave_b=self.waves.b,
                      weights=np.concatenate([np.ravel(W) for W, _, _ in layers]),
                      biases=np.concatenate([np.ravel(b) for _, b, _ in layers]),
                      decision=np.zeros(0) if self.decision is None else np.asarray(self.decision[0], np.float64))
        meta = dict(linear=int(self.waves.linear), slopes=[float(s) for _, _, s in self.hidden],
                    outputs=int(len(self.out[1])), level=None if self.decision is None else float(self.decision[1]))
        return arrays, meta

    @classmethod
    def from_flat(cls, arrays: dict, meta: dict, names: list, sizes: list) -> "SineNet":
        """The net of :meth:`flat`'s arrays and meta, its hidden layers named ``names`` with
        ``sizes`` units; ValueError saying what does not fit."""
        J, widths = len(arrays["wave_b"]), [*sizes, meta["outputs"]]
        shapes = [(n, m) for n, m in zip(widths, [J, *sizes])]
        W, b = arrays["weights"], arrays["biases"]
        if len(W) != sum(n * m for n, m in shapes) or len(b) != sum(widths) or len(meta["slopes"]) != len(sizes):
            raise ValueError(f"its weights ({len(W)}), biases ({len(b)}) or slopes do not fit layers of "
                             f"{widths} units on {J} features")
        cut_W, cut_b = np.cumsum([0] + [n * m for n, m in shapes]), np.cumsum([0] + widths)
        layers = [(W[cut_W[k]:cut_W[k + 1]].reshape(shape), b[cut_b[k]:cut_b[k + 1]]) for k, shape in enumerate(shapes)]
        hidden = [(Wk, bk, float(s)) for (Wk, bk), s in zip(layers[:-1], meta["slopes"])]
        c = arrays["decision"]
        if len(c) not in (0, meta["outputs"]) or (len(c) > 0) != (meta["level"] is not None):
            raise ValueError("its decision row does not fit its outputs")
        decision = (c, float(meta["level"])) if len(c) else None
        return cls(Waves(arrays["wave_A"], arrays["wave_b"], int(meta["linear"])), hidden, layers[-1], decision,
                   list(names))

    def outputs(self, e: np.ndarray, bits: np.ndarray) -> np.ndarray:
        """(N, K) the outputs at encodings ``e`` (N, J) on the patterns ``bits`` (N, units): exact,
        each pattern's map is affine in ``e``."""
        h, start = e, 0
        for W, b, slope in self.hidden:
            z = h @ W.T + b
            h = np.where(bits[:, start:start + len(b)], 1.0, slope) * z
            start += len(b)
        return h @ self.out[0].T + self.out[1]

    def pattern(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """At the points ``p`` (N, 2): (bits (N, units) with z > 0, the decision side (N,) bool)."""
        h, bits = self.waves.features(p), []
        for W, b, slope in self.hidden:
            z = h @ W.T + b
            bits.append(z > 0)
            h = np.where(z > 0, z, slope * z)
        bits = np.concatenate(bits, 1) if bits else np.zeros((len(p), 0), bool)
        side = np.zeros(len(p), bool)
        if self.decision is not None:
            side = (h @ self.out[0].T + self.out[1]) @ self.decision[0] - self.decision[1] > 0
        return bits, side


def read_sine_net(model, sl: Slice) -> SineNet:
    """``model`` (see :func:`sine_encoding`) read on ``sl``; UnsupportedModelError saying what is
    wrong where it is not a sine encoding followed by a plain MLP."""
    leaves = list(leaf_modules(model))
    phases = leaves[0][1].sin_phases()
    F, phi = (np.asarray(torch.as_tensor(t).detach().cpu(), np.float64) for t in phases[:2])
    linear = int(phases[2]) if len(phases) > 2 else 0
    if len(sl.input_shape) != 1 or F.ndim != 2 or F.shape[1] != sl.input_shape[0] or phi.shape != (len(F),):
        raise UnsupportedModelError(
            f"the sine encoding's sin_phases() must give F (J, D) and phi (J,) for inputs (D,) = {sl.input_shape}; "
            f"got {F.shape} and {phi.shape}.")
    waves = Waves(F @ sl.basis, F @ sl.origin + phi, linear)
    _check_encoding(leaves[0][1], Waves(F, phi, linear), sl)
    hidden, names, W, b, width = [], [], np.eye(len(F)), np.zeros(len(F)), len(F)
    for name, module in leaves[1:]:
        kind = type(module)
        if kind is nn.Linear and module.in_features == width:
            Wl = module.weight.detach().to("cpu", torch.float64).numpy()
            bl = np.zeros(len(Wl)) if module.bias is None else module.bias.detach().to("cpu", torch.float64).numpy()
            W, b, width = Wl @ W, Wl @ b + bl, module.out_features
        elif kind in (nn.ReLU, nn.LeakyReLU):
            hidden.append((W, b, float(module.negative_slope) if kind is nn.LeakyReLU else 0.0))
            names.append(name)
            W, b = np.eye(width), np.zeros(width)
        elif not (kind is nn.Identity or (kind is nn.Dropout and not (module.training and module.p > 0))):
            raise UnsupportedModelError(
                f"after a sine encoding splinecam certifies plain MLPs (Linear, ReLU, LeakyReLU, Identity, eval "
                f"Dropout); {name!r} is a {kind.__name__}" + (" of the wrong width" if kind is nn.Linear else "")
                + ".  Put the encoding first and a plain MLP after it.")
    if not all(np.isfinite(a).all() for layer in hidden for a in layer[:2]) or not np.isfinite(W).all():
        raise UnsupportedModelError("the model's weights hold NaN or inf.")
    decision = ((np.ones(1), 0.0) if len(W) == 1 else (np.array([-1.0, 1.0]), 0.0) if len(W) == 2 else None)
    return SineNet(waves, hidden, (W, b), decision, names)


def _check_encoding(module, waves: Waves, sl: Slice) -> None:
    """Refuse an encoding whose ``forward`` is not its ``sin_phases`` at the slice's corners
    (``waves`` on input coordinates)."""
    x = sl.to_input(np.vstack([sl.polygon, sl.polygon.mean(0)]), dtype=torch.float64).numpy()
    dtype = next((t.dtype for t in [*module.parameters(), *module.buffers()] if t.is_floating_point()), torch.float64)
    with torch.no_grad():
        got = module(torch.as_tensor(x, dtype=dtype)).double().numpy()
    want = waves.features(x)
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-5, atol=1e-5):
        raise UnsupportedModelError(
            f"{type(module).__name__}.forward(x) is not sin(x @ F.T + phi) with (F, phi) = its sin_phases() "
            f"(largest difference {np.abs(got - want).max() if got.shape == want.shape else 'in shape'}); fix sin_phases.")


@dataclass
class CurvedPieces:
    """The pieces of a certified run (P pieces, N vertices, U units).

    vertices (N, 2), offsets (P + 1,), edge_units (N, 2): ragged convex pieces, counter-
    clockwise; an edge's label is the (layer, unit) whose curve it approximates, :data:`DECISION`
    on the decision boundary, :data:`BORDER` on the slice border, :data:`INSIDE` between pieces
    of the same pattern; bits (P, U) bool patterns; side (P,)
    bool decision side; certified (P,) bool (False: the piece is an uncertified cell);
    region (P,) int, the region of each piece (-1 for an uncertified cell joined to no region
    that has a certified piece); uncertified (C, 4) the uncertified cells as
    (u0, v0, u1, v1), reasons (C,) int why each is (an index into :data:`UNCERTIFIED`); pending
    (Q, 4) cells left when a limit stopped the run.
    """

    vertices: np.ndarray
    offsets: np.ndarray
    edge_units: np.ndarray
    bits: np.ndarray
    side: np.ndarray
    certified: np.ndarray
    region: np.ndarray
    uncertified: np.ndarray
    pending: np.ndarray
    reasons: np.ndarray


class _Leaves:
    """The finished cells: their pieces, and what each side of each cell touches (for regions)."""

    def __init__(self, net: SineNet, lo: np.ndarray, size: np.ndarray, tol: float):
        self.net, self.lo, self.size, self.tol = net, lo, size, tol
        self.chunks = []  # (quads (n, 4, 2), labels (n, 4, 2), bits, certified, cell, component)
        self.cells = []  # ((depth, i, j), [bits of each component], {(axis, high side): (crossings, components)})
        self.uncertified, self.reasons = [], []
        self.unsure = {}  # uncertified cell -> {pattern key: components of its neighbours with it}
        self.count = 0

    def box(self, d, i, j) -> tuple[np.ndarray, np.ndarray]:
        """Centre(s) and half-width(s) of the cell(s) (depth, i, j) (scalars or (B,) arrays)."""
        half = self.size / 2.0 ** (np.asarray(d)[..., None] + 1)
        return self.lo + (2 * np.stack([i, j], -1) + 1) * half, half

    def add(self, quads: np.ndarray, labels: np.ndarray | None, bits: list, ok: bool, comp: int) -> None:
        """Pieces (n, 4, 2) of the last cell, with their edge labels (n, 4, 2) (None: all
        :data:`INSIDE`; an INSIDE edge on the slice border becomes :data:`BORDER` in
        :func:`_assemble`), one pattern ``bits`` and component."""
        labels = np.full(quads.shape, INSIDE, np.int64) if labels is None else labels
        self.chunks.append((quads, labels, bits, ok, len(self.cells) - 1, comp))
        self.count += len(quads)


def _border_labels(quads: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(n, 4, 2) labels of the edges j -> j+1 of quadrilaterals (n, 4, 2) in the slice box [lo, hi]:
    BORDER where the edge lies on the box's border, INSIDE elsewhere."""
    nxt = np.roll(quads, -1, axis=1)
    on = ((quads == lo) & (nxt == lo)) | ((quads == hi) & (nxt == hi))
    return np.where(on.any(-1), BORDER, INSIDE)[..., None].repeat(2, -1)


def _classify(net: SineNet, centre: np.ndarray, half: np.ndarray):
    """What sound bounds prove of the box: None, or (branches, splits).  ``splits`` are the units
    whose sign the bounds leave open (at most two), each ``(level, unit, rows)`` with ``rows[k] =
    (M_row, m_row)`` its pre-activation where the first split unit has sign k (0: negative); a
    second one is split at the first one's level (then its rows are equal) or later, the same
    unit on both sides of the first (or on one side, its sign proven on the other).  ``branches``
    maps the signs (a tuple of bools, one per split unit) to the bits (a bool array per level)
    of the pattern each sign choice proves.  The walk is :func:`_walk`, compiled."""
    M0, m0, W, w_at, bias, b_at, sizes, slopes = net.stacked
    J, units = len(net.waves.A), int(sizes.sum())
    splits, rows = np.zeros((2, 2), np.int64), np.zeros((2, 2, J + 1))
    keys, bits = np.zeros((4, 2), np.bool_), np.zeros((4, units), np.bool_)
    n_splits, n_branches = _walk(net.waves.A, net.waves.b, net.waves.linear, M0, m0, W, w_at, bias, b_at, sizes, slopes,
                                 np.ascontiguousarray(centre, np.float64), np.ascontiguousarray(half, np.float64),
                                 splits, rows, keys, bits)
    if n_splits < 0:
        return None
    spans = net.spans
    branches = {tuple(keys[i, :n_splits].tolist()): [bits[i, a:z] for a, z in spans] for i in range(n_branches)}
    return branches, [(int(splits[i, 0]), int(splits[i, 1]), [(rows[i, k, :J].copy(), float(rows[i, k, J]))
                                                              for k in (0, 1)]) for i in range(n_splits)]


def _walk(A, b, linear, M0, m0, W, w_at, bias, b_at, sizes, slopes, centre, half, splits, rows, keys, bits):
    """The level walk of :func:`_classify` over one box: at each level the bounds of every unit on
    each branch (at most 4), the open units split (at most 2 in all, else (-1, 0)), each branch
    grown by the signs of its open ones and carried to the next level's maps (``M' = W (s M)``,
    ``m' = W (s m) + b``, s = 1 where on, else the level's slope).  Fills splits (2, 2) (level,
    unit), rows (2, 2, J + 1) (each split's row on each side of the first), keys (4, 2) and bits
    (4, units) of the branches; returns (splits, branches)."""
    levels, J, most = sizes.shape[0], A.shape[0], sizes.max()
    Ms, ms = np.zeros((2, 4, most, J)), np.zeros((2, 4, most))
    ks, bs = np.zeros((2, 4, 2), np.bool_), np.zeros((2, 4, bits.shape[1]), np.bool_)
    on, open_ = np.zeros((4, most), np.bool_), np.zeros((4, most), np.bool_)
    lo, hi, state = np.empty((1, most)), np.empty((1, most)), np.zeros(most, np.bool_)
    Ms[0, 0, :sizes[0]], ms[0, 0, :sizes[0]] = M0, m0
    cur, n_branches, n_splits, start = 0, 1, 0, 0
    for level in range(levels):
        n = sizes[level]
        union = np.zeros(n, np.bool_)
        for br in range(n_branches):
            box_bounds(A, b, linear, Ms[cur, br, :n], ms[cur, br, :n], centre.reshape(1, 2), half.reshape(1, 2),
                       lo[:, :n], hi[:, :n])
            for k in range(n):
                on[br, k], open_[br, k] = lo[0, k] > 0, lo[0, k] <= 0 < hi[0, k]
                union[k] |= open_[br, k]
        units = np.flatnonzero(union)
        if n_splits + units.shape[0] > 2:
            return -1, 0
        for u in units:
            splits[n_splits, 0], splits[n_splits, 1] = level, u
            for side in range(2):
                br = side if n_branches == 2 else 0
                rows[n_splits, side, :J], rows[n_splits, side, J] = Ms[cur, br, u], ms[cur, br, u]
            n_splits += 1
        nxt, grown = 1 - cur, 0
        for br in range(n_branches):
            free = np.array([u for u in units if open_[br, u]], np.int64)
            for signs in range(2 ** free.shape[0]):
                state[:n] = on[br, :n]
                for f in range(free.shape[0]):
                    state[free[f]] = (signs >> (free.shape[0] - 1 - f)) & 1
                ks[nxt, grown, :n_splits - units.shape[0]] = ks[cur, br, :n_splits - units.shape[0]]
                for i in range(units.shape[0]):
                    ks[nxt, grown, n_splits - units.shape[0] + i] = state[units[i]]
                bs[nxt, grown, :start] = bs[cur, br, :start]
                bs[nxt, grown, start:start + n] = state[:n]
                if level + 1 < levels:
                    n2 = sizes[level + 1]
                    for r in range(n2):
                        Ms[nxt, grown, r, :] = 0.0
                        ms[nxt, grown, r] = bias[b_at[level + 1] + r]
                        for q in range(n):
                            w = W[w_at[level + 1] + r * n + q] * (1.0 if state[q] else slopes[level])
                            if w != 0.0:
                                for j in range(J):
                                    Ms[nxt, grown, r, j] += w * Ms[cur, br, q, j]
                                ms[nxt, grown, r] += w * ms[cur, br, q]
                grown += 1
        cur, n_branches, start = nxt, grown, start + n
    keys[:n_branches, :n_splits] = ks[cur, :n_branches, :n_splits]
    bits[:n_branches] = bs[cur, :n_branches]
    return n_splits, n_branches


if njit is not None:
    _walk = njit(cache=True)(_walk)


class _Curve:
    """The zero set of ``z = M e + m`` in a cell, proven (:meth:`prove`) to be at most one arc, in
    coordinates (s, t): ``s`` the axis along which ``sign * z`` increases, the arc ``s = g(t)``.
    grads: the (lo, hi) bounds of dz/du and of dz/dv over the cell; slope: a bound of |g'|."""

    def __init__(self, net: SineNet, M, m, centre, half, axis: int, sign: float, grads, slope: float):
        self.net, self.M, self.m, self.axis, self.sign = net, M[None], np.array([m]), axis, sign
        self.centre, self.half, self.grads, self.slope = centre, half, grads, slope
        self.lo, self.hi = centre - half, centre + half

    @classmethod
    def prove(cls, net: SineNet, M, m, centre, half) -> "_Curve | None":
        """The curve of ``z = M e + m`` (M (J,), m scalar) in the box, or None where sound bounds do
        not prove ``z`` strictly monotone along an axis with at most one zero on each cell side."""
        (gu_lo, gu_hi), (gv_lo, gv_hi) = net.waves.gradient(M[None], centre[None], half[None])
        grads = [(float(gu_lo[0, 0]), float(gu_hi[0, 0])), (float(gv_lo[0, 0]), float(gv_hi[0, 0]))]
        options = []
        for axis in (0, 1):
            lo, hi = grads[axis]
            if lo > 0 or hi < 0:
                other = max(-grads[1 - axis][0], grads[1 - axis][1])
                options.append((other / min(abs(lo), abs(hi)), axis, 1.0 if lo > 0 else -1.0))
        if not options:
            return None
        slope, axis, sign = min(options)
        curve = cls(net, M, m, centre, half, axis, sign, grads, slope)
        sides = np.array([centre, centre])  # the two sides s = s0, s1 (segments along t), together
        sides[:, axis] = curve.lo[axis], curve.hi[axis]
        widths = np.zeros((2, 2))
        widths[:, 1 - axis] = half[1 - axis]
        lo, hi = net.waves.bounds(curve.M, curve.m, sides, widths)
        glo, ghi = net.waves.gradient(curve.M, sides, widths)[1 - axis]
        if ((lo <= 0) & (0 <= hi) & (glo <= 0) & (0 <= ghi)).any():  # more than one zero on a side, maybe
            return None
        return curve

    def point(self, s, t) -> np.ndarray:
        """The points (..., 2) of coordinates ``s`` and ``t`` (arrays of one shape, or numbers)."""
        s, t = np.asarray(s, np.float64), np.asarray(t, np.float64)
        out = np.empty(np.broadcast_shapes(s.shape, t.shape) + (2,))
        out[..., self.axis], out[..., 1 - self.axis] = s, t
        return out

    def h(self, s, t) -> np.ndarray:
        s, t = np.broadcast_arrays(np.asarray(s, float), np.asarray(t, float))
        return self.sign * self.net.waves.values(self.M, self.m, self.point(s.ravel(), t.ravel()))[:, 0].reshape(s.shape)

    def roots(self, t: np.ndarray, width: float) -> np.ndarray:
        """(n,) the arc's s at the t (n,) where it crosses the cell, to within ``width``."""
        n = len(t)
        return self.net.waves.roots(self.M[0], self.m[0], np.full(n, self.sign), self.point(np.zeros(n), t),
                                    np.full(n, self.axis), np.full(n, self.lo[self.axis]),
                                    np.full(n, self.hi[self.axis]), width)

    def step(self, tol: float) -> float:
        """The t-spacing of polyline nodes at which the chord error bound ``|g''| h^2 / 8`` (from
        sound bounds of z's second derivatives over the cell) is tol / 2 (inf: a straight arc)."""
        bend = self.net.waves.curvature(self.M, self.centre[None], self.half[None])[0, 0]  # |z_uu|, |z_uv|, |z_vv|
        ss, st, tt = (bend[0], bend[1], bend[2]) if self.axis == 0 else (bend[2], bend[1], bend[0])
        gmin = min(abs(self.grads[self.axis][0]), abs(self.grads[self.axis][1]))
        g2 = (tt + 2 * st * self.slope + ss * self.slope ** 2) / gmin  # |g''| on the cell
        return math.sqrt(8 * (tol / 2) / g2) if g2 > 0 else math.inf

    def crossings(self, width: float) -> list:
        """[(crossing or None, h > 0 at the side's start)] on the cell sides s = s0 and s = s1
        (along t) and t = t0 and t = t1 (along s), each holding at most one (proven); the
        crossings to within ``width``, found together (compiled: :meth:`Waves.sides`)."""
        first, _, roots = self.net.waves.sides(self.M[0], self.m[0], self.sign, self.axis, self.lo, self.hi, width)
        return [(None if math.isnan(r) else float(r), bool(p > 0)) for r, p in zip(roots, first)]

    def side_keys(self) -> list:
        """The keys (axis, high side) of the sides in the order of :meth:`crossings`."""
        return [(self.axis, False), (self.axis, True), (1 - self.axis, False), (1 - self.axis, True)]


def _one_curve(net: SineNet, rows, centre, half, tol: float):
    """The proven arc of the split unit (its ``rows``, see :func:`_classify`) in the box, or None
    where a condition fails: (curve, the t-interval (a, b) of the arc, nodes t (n,), roots s
    (n,), the side crossings) or (curve, None, None, None, crossings) if there is no arc."""
    curve = _Curve.prove(net, *rows[0], centre, half)
    if curve is None:
        return None
    axis, width = curve.axis, tol / 4
    t0, t1 = curve.lo[1 - axis], curve.hi[1 - axis]
    sides = curve.crossings(width)
    (lower, low_pos), (upper, up_pos) = sides[:2]  # L(t) = h(s0, t) <= 0 and U(t) = h(s1, t) >= 0 on the arc
    a, b = t0, t1
    if lower is None and low_pos or upper is None and not up_pos:
        return curve, None, None, None, sides
    if lower is not None:
        a, b = (a, lower) if not low_pos else (lower, b)
    if upper is not None:
        a, b = (max(a, upper), b) if not up_pos else (a, min(b, upper))
    if b <= a:
        return curve, None, None, None, sides
    n = max(2, math.ceil((b - a) / curve.step(tol)) + 1)
    if n > _MAX_NODES:
        return None
    t = np.linspace(a, b, n)
    t[0], t[-1] = a, b
    return curve, (a, b), t, curve.roots(t, width), sides


def _loop(key, r: float, lo, hi) -> float:
    """The position in [0, 4) on the counter-clockwise border loop of the cell [lo, hi] (sides
    bottom, right, top, left; corner (lo, lo) at 0) of the point ``r`` along the side ``key``."""
    f = (r - lo[key[0] ^ 1]) / (hi[key[0] ^ 1] - lo[key[0] ^ 1])
    return {(1, False): f, (0, True): 1 + f, (1, True): 3 - f, (0, False): 4 - f}[key] % 4


def _loop_point(q: float, lo, hi) -> np.ndarray:
    """The point at position ``q`` of the border loop (see :func:`_loop`)."""
    side, f = int(q) % 4, q - int(q)
    w = hi - lo
    return np.array([(lo[0] + f * w[0], lo[1]), (hi[0], lo[1] + f * w[1]), (hi[0] - f * w[0], hi[1]),
                     (lo[0], hi[1] - f * w[1])][side])


_SIDES = [(1, False), (0, True), (1, True), (0, False)]  # the keys of the loop's sides, in order


def _det_holds_zero(ga, gc) -> bool:
    """Whether interval bounds of ``det [grad a; grad c]`` from gradient bounds ((lo, hi) of d/du,
    (lo, hi) of d/dv) of each hold 0."""
    def mul(x, y):
        p = [x[0] * y[0], x[0] * y[1], x[1] * y[0], x[1] * y[1]]
        return min(p), max(p)

    (p0, p1), (q0, q1) = mul(ga[0], gc[1]), mul(ga[1], gc[0])
    pad = 8 * np.finfo(np.float64).eps * (abs(p0) + abs(p1) + abs(q0) + abs(q1))
    return p0 - q1 - pad <= 0 <= p1 - q0 + pad


def _junction(net: SineNet, splits, centre, half, tol: float):
    """The proven arcs of the two split units in the box (see the module doc), or None where a
    condition fails: (X, ends, signs, faces).  X (2,): where the curves cross, or None where c
    has one sign along A (then each side's C, if any, lies inside that side); ends: the border
    ends of the polylines, counter-clockwise, as (loop position, point (2,), curve: 0 for A, 1
    or 2 for C on A's negative or positive side); signs[i]: (z_a > 0, c > 0) on the border from
    end i to end i + 1; faces: the border intervals of each face (one each about X)."""
    (_, _, rows_a), (_, _, rows_c) = splits
    lo, hi, width, fine = centre - half, centre + half, tol / 4, float(half.max()) * 2.0 ** -40
    Mc, mc = np.array([row[0] for row in rows_c]), np.array([row[1] for row in rows_c])
    low, high = net.waves.bounds(Mc, mc, centre[None], half[None])
    arcs = [_Curve.prove(net, *rows_a[0], centre, half)] + [
        _Curve.prove(net, *row, centre, half) if low[0, k] <= 0 < high[0, k] else False for k, row in enumerate(rows_c)]
    if any(arc is None for arc in arcs) or any(arc and _det_holds_zero(arcs[0].grads, arc.grads) for arc in arcs[1:]):
        return None
    ends = [[]] * 3
    for n, arc in enumerate(arcs):  # each arc's ends on the border (none: no arc, or c's sign proven)
        if arc is False:
            continue
        found = sorted((_loop(key, r, lo, hi), key, r) for key, (r, _) in zip(arc.side_keys(), arc.crossings(
            fine)) if r is not None)  # finely: c's sign at A's ends, and which side of A C's ends are on
        if len(found) not in (0, 2) or (n == 0 and not found):
            return None
        ends[n] = [(q, np.where(np.arange(2) == key[0], (lo, hi)[key[1]], r)) for q, key, r in found]
    steps = [arc.step(tol) if arc else 0.0 for arc in arcs]
    if abs(ends[0][0][1][1 - arcs[0].axis] - ends[0][1][1][1 - arcs[0].axis]) > 2 * steps[0]:
        return None  # A is no chord, nor two (from X to its ends): split first
    # the sign of c at A's ends, from sound bounds of both of its rows near each
    kappa = []
    for _, point in ends[0]:
        low, high = net.waves.bounds(Mc, mc, point[None], np.full((1, 2), fine))
        if not ((low > 0).all() or (high < 0).all()):
            return None
        kappa.append(bool((low > 0).all()))
    (qa0, _), (qa1, _) = ends[0]
    inner = net.waves.values(arcs[0].M, arcs[0].m, np.array([_loop_point((qa0 + qa1) / 2, lo, hi),
                                                             _loop_point((qa0 + qa1) / 2 + 2, lo, hi)]))[:, 0] > 0
    if inner[0] == inner[1]:
        return None
    chain = lambda q: bool(inner[0] if qa0 < q < qa1 else inner[1])  # noqa: E731  (z_a > 0 there)
    crossing = kappa[0] != kappa[1]
    loop = [(qa0, ends[0][0][1], 0), (qa1, ends[0][1][1], 0)]
    for k in (1, 2):  # C on each side of A (row k - 1): its ends on that side
        if any(q in (qa0, qa1) for q, _ in ends[k]):
            return None
        valid = [(q, point, k) for q, point in ends[k] if chain(q) == (k == 2)]
        if len(valid) != (1 if crossing else len(valid) // 2 * 2):
            return None
        loop += valid
    loop.sort(key=lambda end: end[0])
    kinds = [min(k, 1) for _, _, k in loop]
    x = None
    if crossing:
        if kinds not in ([0, 1, 0, 1], [1, 0, 1, 0]):
            return None
        x = _crossing(net, arcs[0], rows_c[1], tuple(sorted(p[1 - arcs[0].axis] for _, p in ends[0])), width)
        if x is None:
            return None
    for k in {k for _, _, k in loop}:  # each polyline (a chord, or one from X to each end) within tol / 2 of its arc
        ts = [(point[1 - arcs[k].axis], int(q)) for q, point, j in loop if j == k]
        chords = [[t, x[1 - arcs[k].axis]] for t, _ in ts] if x is not None else [[t for t, _ in ts]]
        if any(max(t) - min(t) > steps[k] for t in chords) or (x is None and ts[0][1] == ts[1][1]):
            return None  # (a chord with both ends on one cell side would cut off nothing)
    signs, c = [], None
    start = kinds.index(0)
    for i in [(start + j) % len(loop) for j in range(len(loop))]:  # c: kappa after A's end, flipped at C's
        c = kappa[[qa0, qa1].index(loop[i][0])] if kinds[i] == 0 else not c
        nxt = loop[(i + 1) % len(loop)][0]
        signs.append((i, (chain((loop[i][0] + nxt + (4 if nxt < loop[i][0] else 0)) / 2 % 4), c)))
    signs = [sign for _, sign in sorted(signs)]
    faces = [[i] for i in range(4)] if crossing else _faces(loop)
    if any(len({signs[i] for i in face}) > 1 for face in faces):
        return None
    return x, loop, signs, faces


def _faces(loop: list) -> list:
    """The faces that non-crossing chords (each joining the two ends of one curve in ``loop``)
    cut a convex cell into: each the list of border intervals (i: from end i to end i + 1) it
    holds, in order; from the end of one, the chord leads to the start of the next."""
    partner = {}
    for i, (_, _, k) in enumerate(loop):
        j = next(j for j, (_, _, kj) in enumerate(loop) if kj == k and j != i)
        partner[i] = j
    faces, seen = [], set()
    for i in range(len(loop)):
        face, j = [], i
        while j not in seen:
            seen.add(j)
            face.append(j)
            j = partner[(j + 1) % len(loop)]
        if face:
            faces.append(face)
    return faces


def _crossing(net: SineNet, arc: _Curve, row_c, ends: tuple, width: float):
    """The point (2,) where the arc A meets ``z_c = 0`` (row_c: (M_row, m_row)), on A to within
    ``width``: by Newton's method from the cell's centre where z_c then changes sign on A
    between its t - width and t + width (or the cell side); else by bisection along A between
    the t of its ends (2,) (z_c has one sign change on A, proven)."""
    M, m = np.stack([arc.M[0], row_c[0]]), np.array([arc.m[0], row_c[1]])
    x, waves = arc.centre.copy(), net.waves
    for _ in range(8):
        jac = np.stack([(M * waves.A[:, i]) @ waves.slopes(x[None])[0] for i in (0, 1)], 1)
        if abs(np.linalg.det(jac)) < 1e-300:
            break
        x, was = np.clip(x - np.linalg.solve(jac, waves.values(M, m, x[None])[0]), arc.lo, arc.hi), x
        if np.abs(x - was).max() <= width / 64:  # converged (the sign change below checks it)
            break
    ax = arc.axis
    t = np.clip(x[1 - ax] + np.array([-width, 0.0, width]), arc.lo[1 - ax], arc.hi[1 - ax])
    s = arc.roots(t, width)
    on = arc.point(s, t)
    zc = waves.values(M[1:], m[1:], on)[:, 0]
    if (arc.h(arc.lo[ax], t) <= 0).all() and (arc.h(arc.hi[ax], t) >= 0).all() and (zc[0] > 0) != (zc[2] > 0):
        return on[1]
    def on_a(t: float) -> tuple[np.ndarray, bool]:  # A's point at t, and z_c > 0 there
        point = arc.point(arc.roots(np.array([t]), width), np.array([t]))[0]
        return point, bool(waves.values(M[1:], m[1:], point[None])[0, 0] > 0)

    a, b = ends  # else: bisection along A between its ends, where c's signs differ
    first = on_a(a)[1]
    for _ in range(max(1, math.ceil(math.log2(max(abs(b - a), 1e-300) / width)))):
        if on_a((a + b) / 2)[1] != first:
            b = (a + b) / 2
        else:
            a = (a + b) / 2
    return on_a((a + b) / 2)[0]


def certify(net: SineNet, sl: Slice, watch: Watch, tol: float, min_cell: float) -> CurvedPieces:
    """The certified pieces of ``sl`` (an axis-aligned box in ``uv``) for ``net``; see the module
    doc.  A limit of ``watch`` raises its error with ``.pieces`` the pieces finished so far and
    the cells left."""
    lo, hi = sl.polygon.min(0), sl.polygon.max(0)
    leaves = _Leaves(net, lo, hi - lo, tol)
    stack, batch, first = [(0, 0, 0)], [], net.first_maps()
    try:
        while stack:
            batch, stack[-_BATCH:] = stack[-_BATCH:], []
            d, i, j = np.array(batch).T
            lo0, hi0 = net.waves.bounds(*first, *leaves.box(d, i, j))  # the first level of all at once:
            crowded = ((lo0 <= 0) & (hi0 > 0)).sum(1) > 2  # three curves or more: split without a closer look
            while batch:
                d, i, j = cell = batch.pop()
                centre, half = leaves.box(d, i, j)
                found = None if crowded[len(batch)] else _classify(net, centre, half)
                proof = None if found is None else _prove(net, found[1], centre, half, tol)
                if proof is not None:
                    _finish(leaves, cell, centre, half, found, proof)
                elif 2 * half.max() > min_cell:
                    stack.extend((d + 1, 2 * i + a, 2 * j + b) for a in (1, 0) for b in (1, 0))
                    continue
                else:
                    _finish(leaves, cell, centre, half, None, 0 if found is None else len(found[1]))
                watch.done = leaves.count
                watch.area += float(4 * half[0] * half[1])
                watch.check("the sine encoding's curves", 0)
    except StoppedEarly as err:
        err.pieces = _assemble(leaves, [leaves.box(*cell) for cell in stack + batch])
        raise
    return _assemble(leaves, [])


def _prove(net: SineNet, splits: list, centre, half, tol: float):
    """The proof of the cell's geometry given its split units: True (none), the arc of one
    (:func:`_one_curve`) or the crossing of two (:func:`_junction`); None where it fails."""
    if not splits:
        return True
    return _one_curve(net, splits[0][2], centre, half, tol) if len(splits) == 1 else _junction(net, splits, centre, half, tol)


def _finish(leaves: _Leaves, cell, centre, half, found, proof) -> None:
    """Record the pieces of a finished cell and what its sides touch; an uncertified one (found
    None) has the index of its reason in :data:`UNCERTIFIED` as ``proof``."""
    lo, hi = centre - half, centre + half
    corners = np.array([lo, [hi[0], lo[1]], hi, [lo[0], hi[1]]])
    if found is None or not found[1]:  # one pattern (proven, or at the centre)
        ok = found is not None
        if ok:
            bits = found[0][()]
        else:
            b, s = leaves.net.pattern(centre[None])
            bits = _levels(leaves.net, b[0], s[0])
            leaves.uncertified.append(np.concatenate([lo, hi]))
            leaves.reasons.append(proof)
            leaves.unsure[len(leaves.cells)] = {}
        leaves.cells.append((cell, [bits], {}))
        leaves.add(corners[None], None, bits, ok, 0)
    elif len(found[1]) == 1:
        _finish_curve(leaves, cell, found, proof)
    else:
        _finish_junction(leaves, cell, centre, half, found, proof)


def _label(net: SineNet, level: int, unit: int) -> tuple:
    """The edge label of a unit's polyline (see :data:`DECISION`)."""
    return (level, unit) if level < len(net.hidden) else (DECISION, DECISION)


def _finish_curve(leaves: _Leaves, cell, found, proof) -> None:
    """The pieces of a cell with one proven arc: strips of the cell on each side of its polyline."""
    curve, span, t, s, crossings = proof
    branches, ((level, unit, _),) = found
    neg, pos = (branches[(False,)], branches[(True,)])[:: int(curve.sign)]  # the sides of h = sign * z
    ax, lo, hi = curve.axis, curve.lo, curve.hi
    # each side's crossing and the component (0: negative, 1: positive) before and after it
    sides = {key: ([] if root is None else [root], [int(first), int(not first)][: 1 + (root is not None)])
             for key, (root, first) in zip(curve.side_keys(), crossings)}
    leaves.cells.append((cell, [neg, pos], sides))
    strips = [(lo[1 - ax], hi[1 - ax])] if span is None else [(lo[1 - ax], span[0]), (span[1], hi[1 - ax])]
    for ta, tb in strips:  # whole strips on one side of the arc: h(s0) > 0 there, or h(s1) < 0
        if tb <= ta:
            continue
        positive = bool(curve.h(lo[ax], (ta + tb) / 2) > 0)
        quad = curve.point(np.array([lo[ax], hi[ax], hi[ax], lo[ax]]), np.array([ta, ta, tb, tb]))[None]
        leaves.add(quad, None, pos if positive else neg, True, int(positive))
    if span is None:
        return
    for positive, edge in ((False, lo[ax]), (True, hi[ax])):  # the two sides of each polyline segment
        edge = np.full(len(t) - 1, edge)
        quads = curve.point(np.stack([edge, s[:-1], s[1:], edge], 1), np.stack([t[:-1], t[:-1], t[1:], t[1:]], 1))
        labels = np.full(quads.shape, INSIDE, np.int64)
        labels[:, 1] = _label(leaves.net, level, unit)
        leaves.add(quads, labels, pos if positive else neg, True, int(positive))


def _finish_junction(leaves: _Leaves, cell, centre, half, found, proof) -> None:
    """The pieces of a cell with two proven curves (see :func:`_junction`): each face a polygon of
    border points and polylines, fanned into triangles from its first vertex (about X: X itself,
    which sees the whole cell); each side's ends and the faces between them (for the regions)."""
    x, loop, signs, faces = proof
    branches, ((la, a, _), (lc, c, _)) = found
    lo, hi = centre - half, centre + half
    labels = [_label(leaves.net, la, a), _label(leaves.net, lc, c), _label(leaves.net, lc, c)]
    where = np.array([q for q, _, _ in loop])
    corners = [(float(k), corner) for k, corner in enumerate([lo, (hi[0], lo[1]), hi, (lo[0], hi[1])])]
    face_of = {i: f for f, face in enumerate(faces) for i in face}
    comps = [branches[signs[face[0]]] for face in faces]
    sector = lambda q: face_of[(int(np.searchsorted(where, q, side="right")) - 1) % len(loop)]  # noqa: E731
    sides = {}
    for k, key in enumerate(_SIDES):
        along = sorted(float(point[key[0] ^ 1]) for q, point, _ in loop if k <= q < k + 1)
        cuts = [lo[key[0] ^ 1], *along, hi[key[0] ^ 1]]
        sides[key] = (along, [sector(_loop(key, (p0 + p1) / 2, lo, hi)) for p0, p1 in zip(cuts[:-1], cuts[1:])])
    leaves.cells.append((cell, comps, sides))
    for f, face in enumerate(faces):
        points, edges = ([x], [labels[loop[face[0]][2]]]) if x is not None else ([], [])
        for i in face:  # the border from end i to end i + 1, then a polyline (to X or along a chord)
            q0, q1 = where[i], where[(i + 1) % len(loop)]
            inside = [p for _, p in sorted(((q - q0) % 4, p) for q, p in corners
                                           if (q0 < q < q1 if q0 < q1 else (q > q0 or q < q1)))]
            points += [loop[i][1], *inside, loop[(i + 1) % len(loop)][1]]
            edges += [INSIDE] * (len(inside) + 1) + [labels[loop[(i + 1) % len(loop)][2]]]
        _fan(leaves, np.array(points, float), edges, comps[f], f)


def _fan(leaves: _Leaves, poly: np.ndarray, edges: list, bits: list, comp: int) -> None:
    """Add the polygon ``poly`` (k, 2), star-shaped from its first vertex, as the triangles of
    the fan from it; edges[j] labels its edge j -> j + 1."""
    k = len(poly)
    quads = np.stack([np.broadcast_to(poly[0], (k - 2, 2)), poly[1:-1], poly[2:], np.broadcast_to(poly[0], (k - 2, 2))], 1)
    labels = np.full((k - 2, 4, 2), INSIDE, np.int64)
    labels[:, 1] = np.array([np.broadcast_to(e, 2) for e in edges[1:-1]])
    labels[0, 0], labels[-1, 2] = edges[0], edges[-1]
    leaves.add(quads.copy(), labels, bits, True, comp)


def _levels(net: SineNet, bits: np.ndarray, side: bool) -> list:
    """A pattern (units,) and decision side as the per-level list :func:`_classify` gives."""
    out, start = [], 0
    for _, b, _ in net.hidden:
        out.append(bits[start:start + len(b)])
        start += len(b)
    return out + ([np.array([side])] if net.decision is not None else [])


def _assemble(leaves: _Leaves, pending) -> CurvedPieces:
    """The pieces of the finished cells (made counter-clockwise, repeated vertices left out, those
    with fewer than 3 dropped), with their regions (see :func:`_regions`)."""
    net, chunks = leaves.net, leaves.chunks
    n_hidden, units = len(net.hidden), sum(len(b) for _, b, _ in net.hidden)
    sizes = [len(c[0]) for c in chunks]
    quads = np.concatenate([c[0] for c in chunks] + [np.zeros((0, 4, 2))])
    labels = np.concatenate([c[1] for c in chunks] + [np.zeros((0, 4, 2), np.int64)])
    x, y = quads[..., 0], quads[..., 1]
    flip = (x * np.roll(y, -1, 1) - np.roll(x, -1, 1) * y).sum(1) < 0
    quads[flip] = quads[flip, ::-1]  # the label of edge j -> j+1 moves with it
    labels[flip] = np.roll(labels[flip, ::-1], -1, axis=1)
    labels = np.where(labels == INSIDE, _border_labels(quads, leaves.lo, leaves.lo + leaves.size), labels)
    keep = np.any(quads != np.roll(quads, -1, axis=1), axis=2)
    good = keep.sum(1) >= 3
    quads, labels, keep = quads[good], labels[good], keep[good]
    pattern = [np.concatenate(c[2][:n_hidden]) if n_hidden else np.zeros(0, bool) for c in chunks]
    bits = np.repeat(np.array(pattern, bool).reshape(len(chunks), units), sizes, axis=0)[good]
    side = np.repeat([bool(c[2][n_hidden][0]) if net.decision is not None else False for c in chunks], sizes)[good]
    ok = np.repeat([c[3] for c in chunks], sizes).astype(bool)[good]
    cell, comp = (np.repeat([c[k] for c in chunks], sizes).astype(np.int64)[good] for k in (4, 5))
    region = _regions(leaves, n_hidden, cell, comp)
    proven = np.zeros(region.max(initial=-1) + 1, bool)
    proven[region[ok]] = True  # a component of uncertified cells alone is no proven region: -1
    region = np.where(proven[region], np.cumsum(proven)[region] - 1, -1) if len(region) else region
    return CurvedPieces(
        quads[keep], np.concatenate([[0], np.cumsum(keep.sum(1))]).astype(np.int64), labels[keep],
        bits, side, ok, region,
        np.array(leaves.uncertified).reshape(-1, 4),
        np.array([np.concatenate([c - h, c + h]) for c, h in pending]).reshape(-1, 4),
        np.array(leaves.reasons, np.int64),
    )


def _regions(leaves: _Leaves, n_hidden: int, piece_cell: np.ndarray, piece_comp: np.ndarray) -> np.ndarray:
    """(P,) region of each piece: the cells' components (the sides of their arc) joined where
    their activation patterns (the decision side left out) meet along a shared cell side, and
    the components of one pattern around an uncertified cell (at most ``tol`` wide) with each
    other."""
    key = lambda bits: np.concatenate(bits[:n_hidden]).tobytes() if n_hidden else b""  # noqa: E731
    first = np.cumsum([0] + [len(comps) for _, comps, _ in leaves.cells])
    parent = list(range(int(first[-1])))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def join(a, b):
        parent[find(a)] = find(b)

    for k, (_, comps, _) in enumerate(leaves.cells):  # across an arc of the decision function: one pattern
        for i in range(1, len(comps)):
            for j in range(i):
                if key(comps[i]) == key(comps[j]):
                    join(first[k] + i, first[k] + j)
    scale = 2 ** 30
    edges = {}  # (axis, integer coordinate of the side) -> [(start, end, cell, high side?)]
    for k, ((d, i, j), _, _) in enumerate(leaves.cells):
        step = scale >> d
        for axis, low, span in ((0, i * step, (j * step, (j + 1) * step)), (1, j * step, (i * step, (i + 1) * step))):
            edges.setdefault((axis, low), []).append((*span, k, True))
            edges.setdefault((axis, low + step), []).append((*span, k, False))
    for (axis, _), items in edges.items():
        highs = sorted((x for x in items if x[3]), key=lambda x: x[0])
        lows = sorted((x for x in items if not x[3]), key=lambda x: x[0])
        h = 0  # each side's cells tile the line: one sweep along it meets every overlapping pair
        for a0, a1, ka, _ in lows:  # the cell below/left (its high side) meets the cells above/right
            while h < len(highs) and highs[h][1] <= a0:
                h += 1
            for b0, b1, kb, _ in highs[h:]:
                if b0 >= a1:
                    break
                _join_side(leaves, ka, kb, axis, max(a0, b0) / scale, min(a1, b1) / scale, key, first, join)
    for around in leaves.unsure.values():  # an uncertified cell joins the neighbours of one pattern
        for nodes in around.values():
            for node in nodes[1:]:
                join(node, nodes[0])
    roots = np.array([find(a) for a in range(len(parent))], np.int64)[first[piece_cell] + piece_comp]
    return np.unique(roots, return_inverse=True)[1].astype(np.int64).ravel() if len(roots) else roots


def _join_side(leaves, ka, kb, axis, f0, f1, key, first, join) -> None:
    """Join the components of cells ka and kb that meet with one pattern on their shared side
    (at fractions [f0, f1] of the slice box along it)."""
    along = 1 - axis
    x0 = leaves.lo[along] + f0 * leaves.size[along]
    x1 = leaves.lo[along] + f1 * leaves.size[along]
    (_, comps_a, sides_a), (_, comps_b, sides_b) = leaves.cells[ka], leaves.cells[kb]
    sa, sb = sides_a.get((axis, True), ([], [0])), sides_b.get((axis, False), ([], [0]))
    cuts = sorted({x0, x1, *[c for c in sa[0] + sb[0] if x0 < c < x1]})
    for c0, c1 in zip(cuts[:-1], cuts[1:]):
        mid = (c0 + c1) / 2
        ca, cb = sa[1][bisect.bisect(sa[0], mid)], sb[1][bisect.bisect(sb[0], mid)]
        a, b = int(first[ka] + ca), int(first[kb] + cb)
        if key(comps_a[ca]) == key(comps_b[cb]):
            join(a, b)
        for cell, node, bits in ((ka, b, comps_b[cb]), (kb, a, comps_a[ca])):
            if cell in leaves.unsure:
                leaves.unsure[cell].setdefault(key(bits), []).append(node)
