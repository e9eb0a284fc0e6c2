"""The arrays a run over a 1-D chart (a leg of a path) is made of: its intervals, their maps,
codes and end units; the result type of :class:`~splinecam.run.stack.WorkStack` for
:class:`~splinecam.geometry.Intervals` (see :mod:`splinecam.run.regions` for the protocol)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..geometry import Intervals

__all__ = ["PieceArrays"]


@dataclass(frozen=True)
class PieceArrays:
    """R pieces of a path's leg with K outputs (NumPy), in the order the run finished them.

    lo, hi: (R,) float64 parameters of each piece's ends (t on a segment, the angle on an
    ellipse); ends: (R, 2, 2) int64, the (layer, unit) whose breakpoint made the low and the
    high end, (-1, -1) at the leg's ends; affine: (R, K, 1 + d), output k on piece r is
    ``a*t + c`` on a segment (d = 1), ``a cos s + b sin s + c`` on an ellipse (d = 2); packed_codes: (R, B) uint8 activation
    codes (as in :class:`~splinecam.run.regions.RegionArrays`); centroid_outputs: (R, K) the
    outputs at the midpoints.
    """

    lo: np.ndarray
    hi: np.ndarray
    ends: np.ndarray
    affine: np.ndarray
    packed_codes: np.ndarray
    centroid_outputs: np.ndarray

    def __len__(self) -> int:
        return len(self.lo)

    @classmethod
    def of_cells(cls, cells: Intervals, out: torch.Tensor, center: torch.Tensor, codes: torch.Tensor) -> "PieceArrays":
        """Finished pieces on the CPU: ``cells`` (R,) (intervals of a leg, or arcs of an ellipse's
        chart, about the chart point ``center`` (d,)), output states ``out`` (R, 1 + d, *shape)
        (value at ``center``, then the d derivatives), packed ``codes`` (R, B).  The maps are in
        the chart's absolute coordinates: ``a_1 t_1 + ... + a_d t_d + c``."""
        lo, hi = (p.cpu().numpy() for p in cells.parameters(center))
        return cls.of_states(lo, hi, cells.ends.cpu().numpy(), out.reshape(len(cells), 1 + cells.dim, -1).cpu().numpy(),
                             center.cpu().numpy(), cells.centroids().cpu().numpy(), codes.cpu().numpy())

    @classmethod
    def of_states(cls, lo, hi, ends, out, c0, inside, codes) -> "PieceArrays":
        """:meth:`of_cells` from NumPy arrays: the pieces' ends ``lo``, ``hi`` (R,) (absolute) and
        end units ``ends`` (R, 2, 2), output states ``out`` (R, 1 + d, K) at the chart point ``c0``
        (d,), a point ``inside`` (R, d) each piece (about ``c0``), packed ``codes`` (R, B)."""
        slopes = out[:, 1:].transpose(0, 2, 1)  # (R, K, d)
        return cls(lo, hi, ends, np.concatenate([slopes, (out[:, 0] - slopes @ c0)[..., None]], -1), codes,
                   out[:, 0] + (slopes @ inside[:, :, None])[..., 0])

    @classmethod
    def coarse(cls, cells: Intervals, center: torch.Tensor, outputs: int, code_width: int) -> "PieceArrays":
        """Cells (R,) about ``center`` that a ``prune`` settled: NaN maps, zero codes."""
        r = len(cells)
        lo, hi = (p.cpu().numpy() for p in cells.parameters(center))
        return cls(lo, hi, cells.ends.cpu().numpy(), np.full((r, outputs, 1 + cells.dim), np.nan), np.zeros((r, code_width), np.uint8), np.full((r, outputs), np.nan))

    def select(self, index) -> "PieceArrays":
        """The pieces ``index`` (an index array or a mask), in its order."""
        return type(self)(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    @classmethod
    def concat(cls, parts: list["PieceArrays"]) -> "PieceArrays":
        """The pieces of several sets, in order."""
        if len(parts) == 1:
            return parts[0]
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__))

    @classmethod
    def empty(cls, outputs: int, code_width: int) -> "PieceArrays":
        """No pieces, with ``outputs`` outputs and codes of ``code_width`` bytes."""
        return cls(np.zeros(0), np.zeros(0), np.zeros((0, 2, 2), np.int64), np.zeros((0, outputs, 2)),
                   np.zeros((0, code_width), np.uint8), np.zeros((0, outputs)))
