"""Volumes: the exact level-set surface of a network in a 3-D volume as one triangle mesh (from a
:class:`~splinecam.VolumePartition`, or boundary first: refining only the cells the surface can
pass through), and the check of a volume partition against the network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..extras import late, require
from ..geometry import plane_tolerance
from ..geometry.surface import surface_mesh
from ..io.meshes import to_obj, to_ply
from ..volume_partition import partition_volume
from ..volumes import Volume
from .boundary_first import level_set_missed
from .bounds import RELAXATIONS, OutputBounds
from .sampling import VerifyReport, code_mismatches, network_outputs, verified_network

__all__ = ["LevelSetMesh", "level_set_mesh", "partition_level_set_mesh", "verify_volume"]

RTOL = 1e-10  # on-plane tolerance of the level set in a cell (the partition's default rtol)
_CHECK_POINTS = 20000  # at most this many points compared by verify_volume


@dataclass
class LevelSetMesh:
    """The surface ``f_output = t`` of a network in a volume: vertices (V, 3) in chart coordinates
    (each on the surface, shared by the triangles of neighbouring cells), triangles (F, 3)
    (counter-clockwise seen from where ``f_output > t``), ``cell`` (F,): the partition cell of
    each triangle; ``volume``: the chart."""

    vertices: np.ndarray
    triangles: np.ndarray
    cell: np.ndarray
    t: float
    output: int
    volume: Volume
    partition: object = None  # the VolumePartition it was read from

    def __len__(self) -> int:
        return len(self.triangles)

    def __repr__(self) -> str:
        return f"LevelSetMesh({len(self.vertices):,} vertices, {len(self):,} triangles, f[{self.output}] = {self.t:g})"

    def areas(self) -> np.ndarray:
        """(F,) triangle areas in chart coordinates."""
        a, b, c = (self.vertices[self.triangles[:, k]] for k in range(3))
        return np.linalg.norm(np.cross(b - a, c - a), axis=1) / 2

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct edges (E, 2) (sorted vertex pairs) and how many triangles use each (E,)."""
        pairs = np.sort(self.triangles[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
        return np.unique(pairs, axis=0, return_counts=True)

    def inputs(self) -> torch.Tensor:
        """(V, *input_shape) the vertices as network inputs."""
        return self.volume.to_input(self.vertices)

    def to_ply(self, path):
        """Write a binary PLY file (chart coordinates, each triangle's cell as a face property)."""
        return to_ply(path, self.vertices, self.triangles, self.cell)

    def to_obj(self, path):
        """Write a Wavefront OBJ file (chart coordinates)."""
        return to_obj(path, self.vertices, self.triangles)

    def to_trimesh(self):
        """The mesh as a ``trimesh.Trimesh`` (needs the optional package trimesh), not processed
        (no vertex merging or reordering: indices stay those of this mesh)."""
        trimesh = require("trimesh", "meshes", "LevelSetMesh.to_trimesh")
        return trimesh.Trimesh(self.vertices, self.triangles, process=False)

    def plot(self, ax=None, **kwargs):
        """A matplotlib 3-D view: see :func:`splinecam.viz.volumes.plot_mesh`."""
        return late("viz.volumes.plot_mesh")(self, ax=ax, **kwargs)


def level_set_mesh(model, volume: Volume, t: float = 0.0, output: int = 0, dtype=torch.float64, device=None,
                   progress=None, bounds: str = "zonotope", **options) -> LevelSetMesh:
    """The exact surface ``f_output = t`` of ``model`` in ``volume`` as a triangle mesh, boundary
    first: before every piecewise-linear op, cells whose sound output bounds
    (:mod:`splinecam.analysis.bounds`) prove that ``f_output - t`` keeps one sign leave as coarse
    cells; the others are split as by :func:`splinecam.partition`, so the mesh is the one
    ``partition(model, volume).level_set_mesh(t, output)`` gives, from fewer cells.  Options,
    limits and progress as :func:`splinecam.partition`'s; ``bounds``: ``"zonotope"`` or
    ``"interval"``.  ``.partition`` of the result holds the exact and the coarse cells."""
    if bounds not in RELAXATIONS:
        raise ValueError(f"bounds must be one of {RELAXATIONS}, got {bounds!r}.")
    t = float(t)

    def prune_from(graph, shapes):
        k = int(np.prod(shapes[-1]))
        if not 0 <= output < k:
            raise ValueError(f"output must be in [0, {k}), got {output}.")
        bounder = OutputBounds(graph, shapes, bounds)
        return lambda i, cells, values: bounder.settle(
            i, cells, values, lambda corners, forms: level_set_missed(corners, forms, t, output))

    part = partition_volume(model, volume, dtype, device, progress, prune_from=prune_from, **options)
    return part.level_set_mesh(t, output)


def partition_level_set_mesh(part, t: float = 0.0, output: int = 0) -> LevelSetMesh:
    """The surface ``f_output = t`` of a :class:`~splinecam.VolumePartition`: in each exact cell the
    output is affine, so its level set is the planar polygon where that plane meets the cell
    (found only where the cell's vertices lie strictly on both sides, with the on-plane
    tolerance of the cuts); the polygons are fanned into triangles and their vertices, computed
    on the cells' edges, merged across neighbouring cells.  Cells on which ``f_output`` is
    constantly ``t`` (a solid level set) contribute nothing."""
    if not 0 <= output < part.n_outputs:
        raise ValueError(f"output must be in [0, {part.n_outputs}), got {output}.")
    t = float(t)
    keep = np.flatnonzero(part.exact)
    cells = part.polyhedra().select(torch.as_tensor(keep))[0]
    maps = torch.as_tensor(part.affine[keep, output].copy())
    maps[:, 3] -= t
    verts = part.volume.vertices
    extent = torch.as_tensor(np.abs(verts).max(0))
    tol = plane_tolerance(maps[:, :3].unbind(1), maps[:, 3], extent, RTOL)
    mesh = surface_mesh(cells, maps, tol, float(np.abs(verts - verts.mean(0)).max()))
    return LevelSetMesh(mesh.vertices, mesh.triangles, keep[mesh.cell], t, output, part.volume, part)


def verify_volume(part, model=None, tol: float | None = None) -> VerifyReport:
    """Check a volume partition against the network: at each cell's vertex mean and half-way from it
    to its first vertex (at most 20,000 points, on cells drawn at random past that), the
    network's output (the partition's float64 copy, or ``model``) against the cell's map, and
    its activation code against the cell's (bits within ``tol`` of a tie not counted); and the
    cell volumes against the domain's.  ``tol``: 1e-9 (relative to the scale of the numbers)."""
    twin, graph, _ = verified_network(part, None, model, part.volume.input_shape)
    tol = 1e-9 if tol is None else tol
    cells = np.flatnonzero(part.exact)
    if 2 * len(cells) > _CHECK_POINTS:
        cells = np.sort(np.random.default_rng(0).choice(cells, _CHECK_POINTS // 2, replace=False))
    first = part.arrays.vertices[part.arrays.offsets[:-1][cells]]
    uvw = np.concatenate([part.centroids[cells], (part.centroids[cells] + first) / 2])
    cell = np.concatenate([cells, cells])
    x = part.volume.to_input(uvw)
    outputs, codes, scale = network_outputs(twin, graph, x)
    mapped = np.einsum("nkd,nd->nk", part.affine[cell], np.c_[uvw, np.ones(len(uvw))])
    max_abs = float(np.abs(mapped - outputs).max()) if len(uvw) else 0.0
    mismatches = code_mismatches(part, cell, codes, np.ones(len(uvw), bool), graph, x, tol * scale)
    covered = part.volume_fraction
    error = abs(covered - 1) if part.complete else max(0.0, covered - 1)
    return VerifyReport(len(uvw), max_abs, max_abs / scale, mismatches, 0, error, tol, covered, part.complete,
                        len(uvw), len(np.unique(cell)))
