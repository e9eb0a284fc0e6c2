"""The 3-D chart: boxes, charts through four inputs, general polytopes, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import splinecam as sc
from splinecam.volumes import Volume


def test_box_is_the_identity_chart():
    vol = Volume.box([-1, -2, 0], [1, 2, 0.5])
    assert vol.volume == pytest.approx(4.0)
    assert vol.planes.shape == (6, 4) and len(vol.vertices) == 8
    pts = np.random.default_rng(0).uniform(-1, 1, (5, 3))
    assert torch.equal(vol.to_input(pts), torch.as_tensor(pts))
    assert np.allclose(vol.to_chart(vol.to_input(pts)), pts)
    assert vol.contains([[0, 0, 0.25], [0, 0, 0.6]]).tolist() == [True, False]
    assert "volume=4" in repr(vol)


def test_from_points_spans_the_four_inputs():
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((4, 2, 5)).astype(np.float32)
    vol = Volume.from_points(*xs, margin=0.1)
    assert vol.input_shape == (2, 5)
    back = vol.to_input(vol.anchors).numpy()
    assert np.allclose(back, xs, atol=1e-6)
    assert vol.contains(vol.anchors).all()
    assert np.allclose(vol.basis.T @ vol.basis, np.eye(3), atol=1e-12)


def test_general_polytope_and_errors():
    tet = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0], [0.1, 0.1, 0.1]])  # an inner point is ignored
    vol = Volume(np.zeros(4), np.eye(4)[:, :3], tet)
    assert vol.volume == pytest.approx(1 / 6) and len(vol.planes) == 4 and len(vol.vertices) == 4
    assert vol.to_input([[1, 0, 0]]).shape == (1, 4)
    with pytest.raises(ValueError, match="no volume"):
        Volume(np.zeros(3), np.eye(3), [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]])
    with pytest.raises(ValueError, match="rank-deficient"):
        Volume(np.zeros(3), np.ones((3, 3)), tet)
    with pytest.raises(ValueError, match="shape"):
        Volume(np.zeros(4), np.eye(3), tet)
    with pytest.raises(ValueError, match="lo < hi"):
        Volume.box([0, 0, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="one plane"):
        Volume.from_points(np.zeros(5), np.eye(5)[0], np.eye(5)[1], np.eye(5)[0] + np.eye(5)[1])
    with pytest.raises(ValueError, match="NaN"):
        Volume.box([0, 0, np.nan], [1, 1, 1])
    assert sc.Volume is Volume
