"""3-D views of volume partitions and level-set meshes draw what they hold."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import splinecam as sc  # noqa: E402
from helpers import random_mlp  # noqa: E402


def test_plots():
    model = random_mlp([6], 1, 1, inputs=3)
    part = sc.partition(model, sc.Volume.box([-1, -1, -1], [1, 1, 1]), progress=False)
    ax = part.plot()
    ax.figure.canvas.draw()  # 3-D segments are projected when drawn
    assert len(ax.collections) == 1 and len(ax.collections[0].get_segments()) >= 12
    mesh = part.level_set_mesh(float(part.arrays.centroid_outputs[:, 0].mean()))
    ax2 = mesh.plot(facecolors="tab:blue")
    assert len(ax2.collections) == 1
    with pytest.raises(ValueError, match="3-D"):
        mesh.plot(ax=plt.figure().add_subplot())
    plt.close("all")
