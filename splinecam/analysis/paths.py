"""Analysis of a :class:`~splinecam.PathPartition`: its check against the model, the exact
points where the path crosses the decision boundary or a level set, and the transitions of each
layer's activation pattern along the path."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..geometry import Arcs, Intervals
from .sampling import VerifyReport, code_mismatches, network_outputs, verified_network

__all__ = ["PathCrossings", "path_crossings", "transitions", "verify_path"]


def verify_path(part, n_points: int | None = None, seed: int = 0, model=None, tol: float | None = None) -> VerifyReport:
    """Check a path partition against the network (the partition's float64 copy, or ``model``).

    At ``n_points`` points (default 1.5 per piece, at least 100, at most 2000): half of them
    the midpoints of pieces drawn at random (so that short pieces are seen), half uniform in t
    over the pieces: the model's outputs against ``part.evaluate``, the activation code
    against the piece's (bits within ``tol`` of a tie not counted), every point in a piece,
    and the pieces' lengths summing to the path's (``area_error``, ``area_covered`` of the
    report are lengths here).  ``tol``: 1e-9 by default.
    """
    twin, graph, n_points = verified_network(part, n_points, model, part.path.input_shape)
    rng = np.random.default_rng(seed)
    if len(part):
        mids = rng.integers(0, len(part), n_points // 2)
        piece = rng.choice(len(part), n_points - len(mids), p=part.lengths / part.lengths.sum())
        t = np.concatenate([(part.lo[mids] + part.hi[mids]) / 2,
                            part.lo[piece] + rng.uniform(size=len(piece)) * part.lengths[piece]])
    else:
        t = np.zeros(0)
    tol = 1e-9 if tol is None else tol
    x = part.to_input(t)
    first = next(iter(twin.parameters()), None)
    if first is not None:
        x = x.to(device=first.device, dtype=first.dtype)
    idx = part.locate(t)
    located = idx >= 0
    outputs, codes, scale = network_outputs(twin, graph, x)
    err = np.abs(part.evaluate(t)[located] - outputs[located])
    max_abs = float(err.max()) if err.size else 0.0
    mismatches = code_mismatches(part, idx, codes, located, graph, x, tol * scale)
    covered = float(part.lengths.sum()) / part.path.measure
    length_error = abs(covered - 1) if part.complete else max(0.0, covered - 1)
    return VerifyReport(len(t), max_abs, max_abs / scale, mismatches, int((~located).sum()), length_error, tol,
                        covered, part.complete, int(located.sum()), len(np.unique(idx[located])))


@dataclass
class PathCrossings:
    """Where a path crosses the decision boundary (or a level set), in order along it.

    t: (m,) the path parameters of the crossings, exact (closed-form zeros of the piece maps);
    piece: (m,) the piece each lies in (the lower one at a breakpoint); classes: (m, 2) the
    winning class before and after (for a level set or K = 1: 0 below the level, 1 above);
    x: (m, *input_shape) float64 the inputs there.
    """

    t: np.ndarray
    piece: np.ndarray
    classes: np.ndarray
    x: torch.Tensor

    def __len__(self) -> int:
        return len(self.t)


def path_crossings(part, level: float | None = None, output: int | None = None) -> PathCrossings:
    """The exact crossings of the decision boundary along the path: for K = 1 (or a ``level``
    of ``output``, default 0), where the output crosses the level; for K > 1, where the top
    class changes.  Within each piece the candidates are the zeros of the output minus the
    level (or of the differences of two outputs), solved in closed form; the label (side, or
    top class) is read between consecutive candidates and breakpoints, and a crossing is a
    candidate or breakpoint where it changes (a zero that touches without changing sides is
    no crossing)."""
    k = part.n_outputs
    level_set = k == 1 or level is not None
    kind = Arcs if part.path.kind == "ellipse" else Intervals
    aff = torch.from_numpy(np.ascontiguousarray(part.affine))  # (n, K, F)
    o, value = 0 if output is None else int(output), 0.0 if level is None else float(level)
    if level_set:
        if not 0 <= o < k:
            raise ValueError(f"output must be in [0, {k}), got {output!r}.")
        funcs = aff[:, o : o + 1].clone()
        funcs[..., -1] -= value
    else:
        i, j = np.triu_indices(k, 1)
        funcs = aff[:, i] - aff[:, j]  # (n, P, F)
    n, m = funcs.shape[:2]
    lo, hi = torch.from_numpy(part.lo), torch.from_numpy(part.hi)
    region = torch.arange(n).repeat_interleave(m)
    planes = funcs.reshape(n * m, -1)
    top, bottom = kind.range_of(planes, lo[region], hi[region])
    cross = torch.nonzero((top > 0) & (bottom < 0)).flatten()
    which, root = kind.roots(planes[cross], lo[region[cross]], hi[region[cross]])
    cand_piece = region[cross][which].numpy()
    # every point where the label may change, in order: the pieces' ends and the candidates
    pts = np.concatenate([part.lo, part.hi, root.numpy()])
    piece = np.concatenate([np.arange(n), np.arange(n), cand_piece])
    order = np.lexsort((pts, piece))
    pts, piece = pts[order], piece[order]
    same = piece[1:] == piece[:-1]
    a, b = pts[:-1][same], pts[1:][same]
    inner = b > a
    mid, mid_piece, after = ((a + b) / 2)[inner], piece[:-1][same][inner], b[inner]
    values = np.einsum("mkf,mf->mk", part.affine[mid_piece], part.features(mid))  # (q, K)
    labels = (values[:, o] > value).astype(int) if level_set else values.argmax(1)
    change = np.flatnonzero(labels[1:] != labels[:-1])
    t = after[change]
    return PathCrossings(t, mid_piece[change], np.stack([labels[change], labels[change + 1]], 1),
                         part.to_input(t) if len(t) else torch.zeros(0, *part.path.input_shape, dtype=torch.float64))


def transitions(part) -> dict[str, int]:
    """{layer name: the number of breakpoints along the path where that layer's activation
    pattern changes} (neighbouring pieces only: a partial partition's gaps are not counted)."""
    codes = part.codes
    joined = np.flatnonzero(part.hi[:-1] == part.lo[1:])
    out, start = {}, 0
    for layer in part.layers:
        bits = codes[:, start : start + layer.bits]
        out[layer.name] = int((bits[joined] != bits[joined + 1]).any(1).sum())
        start += layer.bits
    return out
