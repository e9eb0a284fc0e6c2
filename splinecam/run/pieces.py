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
    """R pieces of a 1-D chart with K outputs (NumPy), in the order the run finished them.

    lo, hi: (R,) float64 chart coordinates of each piece's ends; ends: (R, 2, 2) int64, the
    (layer, unit) whose breakpoint made the low and the high end, (-1, -1) at the chart's ends;
    affine: (R, K, 2), output k on piece r is ``a*t + c``; packed_codes: (R, B) uint8 activation
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
        """Finished pieces on the CPU in absolute chart coordinates: ``cells`` (R,) about the
        chart point ``center`` (1,), output states ``out`` (R, 2, *shape) (value at ``center``,
        slope), packed ``codes`` (R, B)."""
        out = out.reshape(len(cells), 2, -1).cpu().numpy()
        c0 = float(center[0])
        lo, hi = cells.lo.cpu().numpy(), cells.hi.cpu().numpy()
        a = out[:, 1]
        mid = (lo + hi)[:, None] / 2
        return cls(lo + c0, hi + c0, cells.ends.cpu().numpy(), np.stack([a, out[:, 0] - a * c0], -1),
                   codes.cpu().numpy(), out[:, 0] + a * mid)

    @classmethod
    def coarse(cls, cells: Intervals, center: torch.Tensor, outputs: int, code_width: int) -> "PieceArrays":
        """Cells (R,) about ``center`` that a ``prune`` settled: NaN maps, zero codes."""
        r, c0 = len(cells), float(center[0])
        return cls(cells.lo.cpu().numpy() + c0, cells.hi.cpu().numpy() + c0, cells.ends.cpu().numpy(),
                   np.full((r, outputs, 2), np.nan), np.zeros((r, code_width), np.uint8), np.full((r, outputs), np.nan))

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
