"""The arrays a run over a 3-D chart (a volume) is made of: its convex cells, their maps and codes;
the result type of :class:`~splinecam.run.stack.WorkStack` for
:class:`~splinecam.geometry.polyhedra.Polyhedra` (see :mod:`splinecam.run.regions` for the protocol)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..geometry import Ragged
from ..geometry.polyhedra import Polyhedra

__all__ = ["CellArrays"]


@dataclass(frozen=True)
class CellArrays(Ragged):
    """R convex cells of a 3-D chart with N vertices and F faces in all and K outputs (NumPy).

    vertices: (N, 3) float64 chart coordinates; offsets: (R + 1,) int64, cell r has the vertices
    ``vertices[offsets[r]:offsets[r + 1]]``; incidence: (N,) int64, bit f of a vertex's mask: it
    lies on its cell's face f; planes: (F, 4) the faces ``(a, b, c, d)``, the cell where
    ``a*u + b*v + c*w + d >= 0``; face_offsets: (R + 1,); face_units: (F, 2) the (layer, unit)
    whose plane carries each face, (-1, i) on face i of the volume's polytope; affine: (R, K, 4),
    output k on cell r is ``a*u + b*v + c*w + d``; packed_codes: (R, B) uint8 (as in
    :class:`~splinecam.run.regions.RegionArrays`); centroid_outputs: (R, K) outputs at the
    cells' vertex means.
    """

    vertices: np.ndarray
    offsets: np.ndarray
    incidence: np.ndarray
    planes: np.ndarray
    face_offsets: np.ndarray
    face_units: np.ndarray
    affine: np.ndarray
    packed_codes: np.ndarray
    centroid_outputs: np.ndarray

    def polyhedra(self) -> Polyhedra:
        """The cells as a CPU :class:`~splinecam.geometry.polyhedra.Polyhedra` batch sharing this memory."""
        t = torch.as_tensor
        return Polyhedra(t(self.vertices), t(self.offsets), t(self.incidence), t(self.planes), t(self.face_offsets),
                         t(self.face_units))

    @staticmethod
    def _geometry(cells: Polyhedra, center: torch.Tensor) -> tuple[np.ndarray, ...]:
        """The cells' arrays moved from about ``center`` (3,) to absolute chart coordinates."""
        c = center.cpu().numpy()
        planes = cells.planes.cpu().numpy().copy()
        planes[:, 3] -= planes[:, :3] @ c
        return (cells.verts.cpu().numpy() + c, cells.offsets.cpu().numpy(), cells.incidence.cpu().numpy(), planes,
                cells.face_offsets.cpu().numpy(), cells.face_units.cpu().numpy())

    @classmethod
    def of_cells(cls, cells: Polyhedra, out: torch.Tensor, center: torch.Tensor, codes: torch.Tensor) -> "CellArrays":
        """Finished cells: ``cells`` (R,) about the chart point ``center`` (3,), output states ``out``
        (R, 4, *shape) (value at ``center``, d/du, d/dv, d/dw), packed ``codes`` (R, B)."""
        out = out.reshape(len(cells), 4, -1).cpu().numpy()
        grad = out[:, 1:].transpose(0, 2, 1)  # (R, K, 3)
        const = out[:, 0] - grad @ center.cpu().numpy()
        at_cen = out[:, 0] + (grad * cells.centroids().cpu().numpy()[:, None]).sum(-1)
        return cls(*cls._geometry(cells, center), np.concatenate([grad, const[..., None]], -1), codes.cpu().numpy(),
                   at_cen)

    @classmethod
    def coarse(cls, cells: Polyhedra, center: torch.Tensor, outputs: int, code_width: int) -> "CellArrays":
        """Cells (R,) about ``center`` that a ``prune`` settled: NaN maps, zero codes."""
        r = len(cells)
        return cls(*cls._geometry(cells, center), np.full((r, outputs, 4), np.nan), np.zeros((r, code_width), np.uint8),
                   np.full((r, outputs), np.nan))

    @classmethod
    def concat(cls, parts: list["CellArrays"]) -> "CellArrays":
        """The cells of several sets, in order."""
        if len(parts) == 1:
            return parts[0]
        counts = np.concatenate([np.diff(p.offsets) for p in parts])
        fcounts = np.concatenate([np.diff(p.face_offsets) for p in parts])
        cat = {f: np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__}
        cat["offsets"] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        cat["face_offsets"] = np.concatenate([[0], np.cumsum(fcounts)]).astype(np.int64)
        return cls(**cat)

    @classmethod
    def empty(cls, outputs: int, code_width: int) -> "CellArrays":
        """No cells, with ``outputs`` outputs and codes of ``code_width`` bytes."""
        return cls(np.zeros((0, 3)), np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)),
                   np.zeros(1, np.int64), np.zeros((0, 2), np.int64), np.zeros((0, outputs, 4)),
                   np.zeros((0, code_width), np.uint8), np.zeros((0, outputs)))
