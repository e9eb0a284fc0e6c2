"""Matplotlib 3-D views of volumes: a volume partition's cells (on the border, and their edges), and a
level-set mesh."""

from __future__ import annotations

import numpy as np

from ..geometry import BORDER

__all__ = ["plot_mesh", "plot_volume_partition"]


def _axes3d(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.figure(figsize=(6, 6)).add_subplot(projection="3d")
    if getattr(ax, "name", "") != "3d":
        raise ValueError("ax must be a 3-D matplotlib axes (fig.add_subplot(projection='3d')).")
    return ax


def _frame(ax, volume) -> None:
    lo, hi = volume.vertices.min(0), volume.vertices.max(0)
    ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), zlim=(lo[2], hi[2]), xlabel="u", ylabel="v", zlabel="w")
    ax.set_box_aspect(hi - lo)


def plot_volume_partition(part, ax=None, surface: bool = True, interior: bool = False, seed: int = 0, **kwargs):
    """A :class:`~splinecam.VolumePartition` in a matplotlib 3-D view.

    ``surface``: the cells' faces on the volume's border that face the viewer, filled with one pale
    colour per cell (``seed``), so the partition reads as on a solid block (set the view with
    ``ax.view_init`` before plotting).  ``interior``, or no ``surface``: every (other) cell edge as a
    line segment.  kwargs go to the edges' ``Line3DCollection`` (default thin black).  Returns ax."""
    from mpl_toolkits.mplot3d.art3d import Line3DCollection, Poly3DCollection

    from .plot import pale_colors

    ax = _axes3d(ax)
    _frame(ax, part.volume)
    index, offsets, cell, units = part.faces()
    verts = part.arrays.vertices
    border = units[:, 0] == BORDER
    if surface:
        elev, azim = np.radians(ax.elev), np.radians(ax.azim)
        eye = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
        normals = part.arrays.planes[:, :3]  # pointing inside
        front = np.flatnonzero(border & (normals @ eye < -1e-9 * np.linalg.norm(normals, axis=1)))  # edge-on: unseen
        polygons = [verts[index[offsets[f]:offsets[f + 1]]] for f in front]
        ax.add_collection3d(Poly3DCollection(polygons, facecolors=pale_colors(len(part), seed)[cell[front]],
                                             edgecolors="0.25", linewidths=0.25))
    lined = ~border if surface else np.ones(len(units), bool)
    if (interior or not surface) and lined.any():
        nxt = np.arange(1, len(index) + 1)
        nxt[offsets[1:] - 1] = offsets[:-1]
        on = np.repeat(lined, np.diff(offsets))
        pairs = np.unique(np.sort(np.stack([index[on], index[nxt[on]]], 1), axis=1), axis=0)
        ax.add_collection3d(Line3DCollection(verts[pairs], **{"colors": "k", "linewidths": 0.3, **kwargs}))
    return ax


def plot_mesh(mesh, ax=None, color="0.75", edges: bool = False, **kwargs):
    """A :class:`~splinecam.LevelSetMesh` as triangles of ``color`` lit from the upper left of the
    view, both sides alike (a triangle's orientation does not matter); ``edges``: also draw each
    triangle's edges thin and dark.  kwargs go to ``Poly3DCollection``.  Returns ax."""
    from matplotlib.colors import to_rgba
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    ax = _axes3d(ax)
    _frame(ax, mesh.volume)
    tri = mesh.vertices[mesh.triangles]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
    elev, azim = np.radians(ax.elev + 35), np.radians(ax.azim - 45)
    light = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
    rgba = np.array(to_rgba(color))
    faces = np.c_[rgba[:3] * (0.35 + 0.65 * np.abs(normals @ light))[:, None], np.full(len(tri), rgba[3])]
    style = {"facecolors": faces, "edgecolors": "0.2" if edges else faces, "linewidths": 0.15 if edges else 0.3,
             **kwargs}
    ax.add_collection3d(Poly3DCollection(tri, **style))
    return ax
