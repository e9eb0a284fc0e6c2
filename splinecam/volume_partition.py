"""``VolumePartition``: the exact linear cells of a model in a 3-D volume (convex polyhedra, their
affine maps and codes), with the queries and the convenience methods of the layers above."""

from __future__ import annotations

import time
from dataclasses import asdict
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import torch

from ._version import __version__
from .errors import InvalidPartitionFile, StoppedEarly, UnsupportedModelError
from .extras import late
from .geometry.polyhedra import Polyhedra
from .geometry.surface import complex_counts
from .io.files import VOLUME_FILE, read_arrays, save_arrays
from .partition import NetworkCopy, check_shapes, checked_arguments, region_limit
from .run.chain import ChainRun, cached_chain, chain_applies
from .run.engine import Engine
from .run.plan import Plan
from .run.regions import LayerInfo, unpack_codes
from .run.trace import frozen, prepare
from .run.watch import Watch
from .run.volume_cells import CellArrays
from .volumes import Volume, as_chart_points

__all__ = ["VolumePartition", "partition_volume"]

if TYPE_CHECKING:  # the analysis layer sits above this module: its types only
    from .analysis.sampling import VerifyReport
    from .analysis.volumes import LevelSetMesh

_LOCATE_ELEMENTS = 1 << 22  # point-by-face plane values held at once by locate


class VolumePartition(NetworkCopy):
    """The linear cells of a network in a volume.

    Cells are convex polyhedra in chart coordinates ``uvw``; on cell r the network is
    ``f(uvw) = affine[r] @ (u, v, w, 1)``.  ``arrays`` is the public view of everything (see
    :class:`~splinecam.run.volume_cells.CellArrays`); ``layers`` describes the piecewise-linear
    layers of the codes and face units; ``complete`` is False for the partial result of a run a
    limit stopped (its cells are exact but do not fill the volume); ``exact`` (R,) is False for the
    coarse cells of :func:`splinecam.level_set_mesh` (proved free of its level set; NaN maps).
    """

    def __init__(self, arrays: CellArrays, volume: Volume, layers: list[LayerInfo], seconds: float = 0.0,
                 network=None, complete: bool = True, exact: np.ndarray | None = None):
        self.arrays, self.volume, self.layers, self.seconds = arrays, volume, list(layers), seconds
        self.complete = bool(complete)
        self.exact = np.ones(len(arrays), bool) if exact is None else np.asarray(exact, bool)
        self._network = (None, None) if network is None else network  # see NetworkCopy

    def __repr__(self) -> str:
        return self._summary("VolumePartition", "cells", self.volume_fraction, "volume")

    @property
    def affine(self) -> np.ndarray:
        """(R, K, 4): on cell r, output k is ``a*u + b*v + c*w + d``."""
        return self.arrays.affine

    @property
    def codes(self) -> np.ndarray:
        """(R, n_bits) bool activation pattern of each cell, layer after layer."""
        return unpack_codes(self.arrays.packed_codes, self.layers)

    def codes_of(self, index) -> np.ndarray:
        """(n, n_bits) bool codes of the cells ``index`` (n,)."""
        return unpack_codes(self.arrays.packed_codes[np.asarray(index)], self.layers)

    def polyhedra(self) -> Polyhedra:
        """The cells as a CPU :class:`~splinecam.geometry.polyhedra.Polyhedra` batch."""
        return self.arrays.polyhedra()

    @cached_property
    def volumes(self) -> np.ndarray:
        """(R,) cell volumes."""
        return self.polyhedra().volumes().numpy()

    @property
    def volume_fraction(self) -> float:
        """The cells' total volume over the domain's (1 for a complete partition, up to rounding)."""
        return float(self.volumes.sum()) / self.volume.volume

    @cached_property
    def centroids(self) -> np.ndarray:
        """(R, 3) vertex mean of each cell (a point strictly inside it)."""
        return self.polyhedra().centroids().numpy()

    def faces(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every face of every cell: vertex indices (M,) into ``arrays.vertices`` and offsets
        (F + 1,) (face f is ``index[offsets[f]:offsets[f + 1]]``, counter-clockwise seen from
        outside its cell), the cell (F,) and the (layer, unit) (F, 2) of each face."""
        cells = self.polyhedra()
        index, offsets = cells.faces()
        cell = np.repeat(np.arange(len(self)), np.diff(self.arrays.face_offsets))
        return index.numpy(), offsets.numpy(), cell, self.arrays.face_units

    def cell(self, r: int) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """Cell r: its vertices (n, 3), its faces as index arrays into them (counter-clockwise seen
        from outside) and their (layer, unit) (f, 2)."""
        index, offsets, cell, units = self.faces()
        first, start = self.arrays.offsets[r], self.arrays.face_offsets[r]
        faces = [index[offsets[f]:offsets[f + 1]] - first for f in range(start, self.arrays.face_offsets[r + 1])]
        return self.arrays.vertices[first:self.arrays.offsets[r + 1]], faces, units[start:self.arrays.face_offsets[r + 1]]

    def locate(self, uvw, tol: float | None = None) -> np.ndarray:
        """(N,) the cell holding each point ``uvw`` (N, 3) (the first, for a point on a shared face;
        -1 outside every cell).  ``tol``: how far outside a face still counts (default a 1e-9
        of the volume's size)."""
        pts = as_chart_points(uvw)
        tol = 1e-9 * float(np.abs(self.volume.vertices).max()) if tol is None else tol
        planes, starts = self.arrays.planes, self.arrays.face_offsets[:-1]
        out = np.full(len(pts), -1, np.int64)
        if not len(self):
            return out
        step = max(1, _LOCATE_ELEMENTS // max(1, len(planes)))
        for s in range(0, len(pts), step):
            values = pts[s : s + step] @ planes[:, :3].T + planes[:, 3]
            inside = np.minimum.reduceat(values, starts, axis=1) >= -tol
            hit = inside.any(1)
            out[s : s + step] = np.where(hit, inside.argmax(1), -1)
        return out

    def evaluate(self, uvw) -> np.ndarray:
        """(N, K) outputs at ``uvw`` (N, 3) from the cells' maps (NaN outside every cell)."""
        pts = as_chart_points(uvw)
        cell = self.locate(pts)
        out = np.einsum("nkd,nd->nk", self.affine[np.maximum(cell, 0)], np.c_[pts, np.ones(len(pts))])
        out[cell < 0] = np.nan
        return out

    def complex_counts(self) -> tuple[int, int]:
        """(vertices, edges) of the cell complex: the cells' vertices and edges, each shared one once."""
        return complex_counts(self.polyhedra(), float(np.abs(self.volume.vertices - self.volume.vertices.mean(0)).max()))

    def verify(self, model=None, tol: float | None = None) -> "VerifyReport":
        """Check the cells against the network: see :func:`splinecam.analysis.volumes.verify_volume`."""
        return late("analysis.volumes.verify_volume")(self, model=model, tol=tol)

    def level_set_mesh(self, t: float = 0.0, output: int = 0) -> "LevelSetMesh":
        """The exact surface ``f_output = t`` as a triangle mesh: see
        :func:`splinecam.analysis.volumes.partition_level_set_mesh`."""
        return late("analysis.volumes.partition_level_set_mesh")(self, t, output)

    # -- save / load ----------------------------------------------------------------

    def save(self, path) -> None:
        """Write an ``.npz`` file (arrays and JSON only), atomically as :meth:`Partition.save`."""
        v, a = self.volume, self.arrays
        meta = {"format": VOLUME_FILE.format, "version": __version__, "seconds": self.seconds,
                "complete": self.complete, "layers": [asdict(layer) for layer in self.layers],
                "input_shape": list(v.input_shape)}
        arrays = dict(verts=a.vertices, offsets=a.offsets, incidence=a.incidence, planes=a.planes,
                      face_offsets=a.face_offsets, face_units=a.face_units, affine=a.affine,
                      centroid_outputs=a.centroid_outputs, codes=a.packed_codes, exact=self.exact, origin=v.origin,
                      basis=v.basis, polytope=v.vertices)
        save_arrays(path, arrays, meta)

    @classmethod
    def load(cls, path) -> "VolumePartition":
        """Read a file (a path or an open binary file) written by :meth:`save` (no model: pass one
        to ``verify``); raises :class:`~splinecam.InvalidPartitionFile` saying why for a file that
        is not one."""
        meta, f = read_arrays(path, VOLUME_FILE)
        try:
            volume = Volume(f["origin"], f["basis"], f["polytope"])
        except ValueError as err:
            raise InvalidPartitionFile(f"{path} is not a valid splinecam volume partition: its volume is invalid "
                                       f"({err})") from None
        arrays = CellArrays(f["verts"], f["offsets"].astype(np.int64), f["incidence"].astype(np.int64), f["planes"],
                            f["face_offsets"].astype(np.int64), f["face_units"].astype(np.int64), f["affine"],
                            f["codes"], f["centroid_outputs"])
        return cls(arrays, volume, [LayerInfo(**layer) for layer in meta["layers"]], seconds=meta["seconds"],
                   complete=meta["complete"], exact=f["exact"])

    def plot(self, ax=None, **kwargs):
        """The cells' edges in a matplotlib 3-D view: see :func:`splinecam.viz.volumes.plot_volume_partition`."""
        return late("viz.volumes.plot_volume_partition")(self, ax=ax, **kwargs)


def partition_volume(model, volume: Volume, dtype=torch.float64, device=None, progress=None, *, prune_from=None,
                     started: float | None = None, tiles=None, executor=None, **options) -> VolumePartition:
    """The exact cells of ``model`` in ``volume`` (:func:`splinecam.partition` with a
    :class:`~splinecam.Volume`; the same options, limits and progress).  ``prune_from(graph,
    shapes)``: makes the run's ``prune`` (see :class:`~splinecam.run.stack.WorkStack`; boundary
    first) from the graph and its value shapes; ``started``: when the time limit
    counts from (a ``time.perf_counter()`` reading; default now).  ``sc.partition`` on a volume
    calls it (the volume's ``partitioner``)."""
    started = time.perf_counter() if started is None else started
    opts, device = checked_arguments(model, volume, device, options, "partition", Volume)
    if tiles is not None or executor is not None:
        raise ValueError("tiles and executor apply to slices; partition a volume without them.")
    chain = cached_chain(model, volume) if chain_applies(dtype, device) else None
    if chain is not None:
        graph, shapes = chain.graph(volume.input_shape[0])
        dtype, device = torch.float64, torch.device("cpu")
        network = frozen(model, dtype, device, volume.input_shape)
    else:
        twin, graph = prepare(model, dtype, device, volume.input_shape)
        shapes = check_shapes(twin, graph, volume, dtype, device)
        network = (twin, graph)
    flat = [f"{node.name} ({type(node.op).__name__})" for node in graph.split_nodes
            if not (node.op.any_cells or node.op.volumes)]
    if flat:
        raise UnsupportedModelError(f"{', '.join(flat)}: these ops are not supported in a 3-D volume; partition "
                                    "2-D slices of it (sc.Slice) instead.")
    plan = Plan.make(graph, shapes, volume, dtype, device, opts.rtol, opts.budget, opts.chunk_size)
    prune = None if prune_from is None else prune_from(graph, shapes)
    run = (ChainRun if chain is not None else Engine)(plan, prune)
    max_regions, note = region_limit(opts.max_regions, plan.region_bytes(), plan.budget)
    watch = Watch(volume, progress, max_regions, opts.timeout, started, note)
    try:
        result = run.run(watch)
    except StoppedEarly as err:
        err.partial = VolumePartition(run.finished_regions(), volume, run.layers, watch.elapsed(), network, False)
        raise
    return VolumePartition(result.regions, volume, result.layers, result.seconds, network, exact=result.exact)
