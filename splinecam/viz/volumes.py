"""Matplotlib 3-D views of volumes: the edges of a volume partition's cells, and a level-set mesh."""

from __future__ import annotations

import numpy as np

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


def plot_volume_partition(part, ax=None, **kwargs):
    """The edges of every cell of a :class:`~splinecam.VolumePartition` as line segments (each shared
    edge drawn once per cell).  kwargs go to ``Line3DCollection`` (default thin black).  Returns ax."""
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    ax = _axes3d(ax)
    index, offsets, _, _ = part.faces()
    counts = np.diff(offsets)
    nxt = np.arange(1, len(index) + 1)
    nxt[offsets[1:] - 1] = offsets[:-1]
    pairs = np.unique(np.sort(np.stack([index, index[nxt]], 1), axis=1), axis=0) if counts.size else np.zeros((0, 2), int)
    verts = part.arrays.vertices
    ax.add_collection3d(Line3DCollection(verts[pairs], **{"colors": "k", "linewidths": 0.3, **kwargs}))
    _frame(ax, part.volume)
    return ax


def plot_mesh(mesh, ax=None, **kwargs):
    """A :class:`~splinecam.LevelSetMesh` as shaded triangles.  kwargs go to ``Poly3DCollection``
    (default light grey faces lit from one side, thin dark edges).  Returns ax."""
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    ax = _axes3d(ax)
    from matplotlib.colors import LightSource

    style = {"facecolors": "0.8", "edgecolors": "0.3", "linewidths": 0.1, "shade": True,
             "lightsource": LightSource(azdeg=315, altdeg=45), **kwargs}
    ax.add_collection3d(Poly3DCollection(mesh.vertices[mesh.triangles], **style))
    _frame(ax, mesh.volume)
    return ax
