"""The arrays a partition of a slice is made of: its ragged regions, their maps and codes, and its
layers.  A result type of a run (this one for polygons; :mod:`splinecam.run.pieces` for a path)
gives the classmethods ``of_cells``, ``coarse``, ``concat`` and ``empty`` that the work stack
(:mod:`splinecam.run.stack`) makes its result with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..geometry import Polygons, Ragged

__all__ = ["LayerInfo", "RegionArrays", "code_width", "concat_regions", "join_regions", "region_arrays", "unpack_codes",
           "vertex_means"]


@dataclass(frozen=True)
class LayerInfo:
    """A piecewise-linear layer: where it is in the model, its units and its code bits."""

    name: str
    units: int
    bits: int


@dataclass(frozen=True)
class RegionArrays(Ragged):
    """The public ragged view of R regions with N vertices in all and K outputs (NumPy).

    vertices: (N, 2) float64 slice coordinates, each region's counter-clockwise;
    offsets: (R + 1,) int64, region r is ``vertices[offsets[r]:offsets[r + 1]]``;
    edge_units: (N, 2) int64, the (layer, unit) whose line carries the edge from
    vertex j to the next vertex of its region, (-1, -1) on the slice border;
    affine: (R, K, 3), output k on region r is ``a*u + b*v + c``;
    packed_codes: (R, B) uint8 activation codes, each layer's bits packed from a
    byte boundary (see :func:`unpack_codes`);
    centroid_outputs: (R, K) outputs at the region centroids (vertex means).
    """

    vertices: np.ndarray
    offsets: np.ndarray
    edge_units: np.ndarray
    affine: np.ndarray
    packed_codes: np.ndarray
    centroid_outputs: np.ndarray

    @classmethod
    def of_cells(cls, polys: Polygons, out: torch.Tensor, center: torch.Tensor, codes: torch.Tensor) -> "RegionArrays":
        """Finished regions: :func:`region_arrays`."""
        return region_arrays(polys, out, center, codes)

    @classmethod
    def coarse(cls, polys: Polygons, center: torch.Tensor, outputs: int, code_width: int) -> "RegionArrays":
        """Cells ``polys`` (R,) about ``center`` (2,) that a ``prune`` settled: NaN maps, zero codes."""
        r = len(polys)
        nan = np.full((r, outputs), np.nan)
        return cls((polys.verts + center).cpu().numpy(), polys.offsets.cpu().numpy(), polys.edge_units.cpu().numpy(),
                   np.full((r, outputs, 3), np.nan), np.zeros((r, code_width), np.uint8), nan)

    @classmethod
    def concat(cls, parts: list["RegionArrays"]) -> "RegionArrays":
        """:func:`concat_regions`."""
        return concat_regions(parts)

    @classmethod
    def empty(cls, outputs: int, code_width: int) -> "RegionArrays":
        """No regions, with ``outputs`` outputs and codes of ``code_width`` bytes."""
        return cls(np.zeros((0, 2)), np.zeros(1, np.int64), np.zeros((0, 2), np.int64), np.zeros((0, outputs, 3)),
                   np.zeros((0, code_width), np.uint8), np.zeros((0, outputs)))

    def polygons(self) -> Polygons:
        """The regions as a CPU :class:`~splinecam.geometry.Polygons` batch sharing this memory."""
        return Polygons.from_numpy(self.vertices, self.offsets, self.edge_units)


def vertex_means(vertices: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(R, 2) the mean of each ragged polygon's vertices (N, 2) (a point strictly inside)."""
    if len(offsets) < 2:
        return np.zeros((0, 2))
    return np.add.reduceat(vertices, offsets[:-1], axis=0) / np.diff(offsets)[:, None]


def region_arrays(polys: Polygons, out: torch.Tensor, center: torch.Tensor, codes: torch.Tensor) -> RegionArrays:
    """Finished regions as :class:`RegionArrays` (on the CPU, in absolute slice coordinates).

    polys: (R,) polygons about the slice point ``center`` (2,); out: (R, 3, *shape) the output
    states (value at ``center``, d/du, d/dv); codes: (R, B) packed activation codes, uint8.
    The centroid outputs are taken about ``center``, so they keep their precision far from 0.
    """
    out = out.reshape(len(polys), 3, -1).cpu().numpy()  # NumPy from here: few, small arrays
    cx, cy = center.tolist()
    cen = vertex_means(polys.verts.cpu().numpy(), polys.offsets.cpu().numpy())
    a, b = out[:, 1], out[:, 2]
    c = out[:, 0] - a * cx - b * cy
    at_cen = out[:, 0] + a * cen[:, :1] + b * cen[:, 1:]
    return RegionArrays(polys.verts.cpu().numpy() + center.cpu().numpy(), polys.offsets.cpu().numpy(),
                        polys.edge_units.cpu().numpy(), np.stack([a, b, c], -1), codes.cpu().numpy(), at_cen)


def unpack_codes(packed: np.ndarray, layers: list[LayerInfo]) -> np.ndarray:
    """(n, B) packed codes -> (n, sum of bits) bool, layer after layer."""
    parts, start = [], 0
    for layer in layers:  # each layer's bits are packed from a byte boundary
        width = -(-layer.bits // 8)
        parts.append(np.unpackbits(packed[:, start : start + width], axis=1, count=layer.bits))
        start += width
    return np.concatenate(parts, axis=1).astype(bool) if parts else np.zeros((len(packed), 0), bool)


def concat_regions(parts: list[RegionArrays]) -> RegionArrays:
    """The regions of several region sets, in order (the one set itself where there is one)."""
    if len(parts) == 1:
        return parts[0]
    counts = np.concatenate([np.diff(p.offsets) for p in parts])
    return RegionArrays(
        np.concatenate([p.vertices for p in parts]), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        np.concatenate([p.edge_units for p in parts]), np.concatenate([p.affine for p in parts]),
        np.concatenate([p.packed_codes for p in parts]), np.concatenate([p.centroid_outputs for p in parts]),
    )


def code_width(layers: list[LayerInfo]) -> int:
    """Bytes of the packed codes of ``layers`` (each layer's bits from a byte boundary)."""
    return sum(-(-layer.bits // 8) for layer in layers)


def join_regions(parts: list, outputs: int, layers: list[LayerInfo], kind=RegionArrays):
    """The results ``parts`` of type ``kind`` in one (``kind.concat``); with none, an empty
    one with ``outputs`` outputs and the codes of ``layers``."""
    return kind.concat(parts) if parts else kind.empty(outputs, code_width(layers))
