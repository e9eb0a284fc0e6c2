"""3-D views of volume partitions and level-set meshes draw what they hold."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import splinecam as sc  # noqa: E402
from helpers import random_mlp  # noqa: E402


def test_plots():
    model = random_mlp([6], 1, 1, inputs=3)
    part = sc.partition(model, sc.Volume.box([-1, -1, -1], [1, 1, 1]), progress=False)
    ax = part.plot(surface=False)
    ax.figure.canvas.draw()  # 3-D segments are projected when drawn
    assert len(ax.collections) == 1 and len(ax.collections[0].get_segments()) >= 12
    mesh = part.level_set_mesh(float(part.arrays.centroid_outputs[:, 0].mean()))
    ax2 = mesh.plot(color="tab:blue", edges=True)
    assert len(ax2.collections) == 1
    with pytest.raises(ValueError, match="3-D"):
        mesh.plot(ax=plt.figure().add_subplot())
    plt.close("all")


def test_the_surface_shows_the_cells_on_the_faces_seen():
    model = random_mlp([8, 8], 1, 3, inputs=3)
    part = sc.partition(model, sc.Volume.box([-1, -1, -1], [1, 1, 1]), progress=False)
    index, offsets, cell, _ = part.faces()
    w = part.arrays.vertices[:, 2]
    on_top = np.array([np.all(w[index[a:b]] == 1.0) for a, b in zip(offsets[:-1], offsets[1:])])
    assert on_top.sum() > 1
    ax = plt.figure().add_subplot(projection="3d")
    ax.view_init(elev=90, azim=-90)  # looking down: only the top face is seen
    part.plot(ax=ax)
    ax.figure.canvas.draw()
    (polys,) = ax.collections
    assert len(polys.get_paths()) == on_top.sum()
    assert len(np.unique(polys.get_facecolors(), axis=0)) == len(np.unique(cell[on_top]))
    ax = part.plot(interior=True)  # plus the edges inside
    assert [type(c).__name__ for c in ax.collections] == ["Poly3DCollection", "Line3DCollection"]
    plt.close("all")
