"""Slices: the chart maps points where it says, bases are orthonormal, polygons are
normalised to convex counter-clockwise form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import splinecam as sc
from helpers import examples

finite = st.floats(-10, 10, allow_nan=False)


def assert_orthonormal(basis: np.ndarray) -> None:
    np.testing.assert_allclose(basis.T @ basis, np.eye(2), atol=1e-12)


@settings(max_examples=examples(60), deadline=None)
@given(
    shape=st.sampled_from([(2,), (5,), (3, 4), (1, 3, 2, 2)]),
    seed=st.integers(0, 10**6),
    margin=st.floats(0.0, 1.0),
)
def test_from_points_maps_anchors_back(shape, seed, margin):
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(3,) + shape)
    sl = sc.Slice.from_points(*pts, margin=margin)
    assert sl.input_shape == shape and sl.dim == int(np.prod(shape))
    assert_orthonormal(sl.basis)
    assert sl.anchors_uv.shape == (3, 2)
    back = sl.to_input(sl.anchors_uv)
    assert back.shape == (3,) + shape and back.dtype == torch.float64
    np.testing.assert_allclose(back.numpy(), pts, rtol=0, atol=1e-12 * (1 + np.abs(pts).max()))
    np.testing.assert_allclose(sl.to_plane(pts), sl.anchors_uv, atol=1e-12 * (1 + np.abs(pts).max()))
    # the polygon is the bounding box of the anchors, grown by the margin
    lo, hi = sl.polygon.min(0), sl.polygon.max(0)
    size = sl.anchors_uv.max(0) - sl.anchors_uv.min(0)
    assert np.all(lo <= sl.anchors_uv.min(0)) and np.all(hi >= sl.anchors_uv.max(0))
    np.testing.assert_allclose(hi - lo, size + 2 * margin * np.maximum(size, size.max() * 1e-3), rtol=1e-12)


def test_from_points_accepts_tensors_and_keeps_the_first_point_as_origin():
    pts = torch.tensor([[0.0, 0, 1], [1, 0, 1], [0, 2, 1]])
    sl = sc.Slice.from_points(*pts)
    np.testing.assert_array_equal(sl.origin, pts[0].double().numpy())
    np.testing.assert_allclose(sl.anchors_uv[0], [0, 0], atol=0)
    # the three anchors keep their distances
    d = np.linalg.norm(sl.anchors_uv[:, None] - sl.anchors_uv[None], axis=-1)
    p = pts.double().numpy()
    np.testing.assert_allclose(d, np.linalg.norm(p[:, None] - p[None], axis=-1), atol=1e-12)


@settings(max_examples=examples(40), deadline=None)
@given(d=st.integers(2, 50), seed=st.integers(0, 1000), radius=st.floats(1e-3, 1e3))
def test_around(d, seed, radius):
    x = np.random.default_rng(seed + 1).normal(size=d)
    sl = sc.Slice.around(x, radius=radius, seed=seed)
    assert_orthonormal(sl.basis)
    np.testing.assert_array_equal(sl.to_input(np.zeros((1, 2))).numpy()[0], x)
    np.testing.assert_allclose(np.abs(sl.polygon), radius, rtol=1e-15)
    assert sl.area == pytest.approx(4 * radius**2, rel=1e-12)
    again = sc.Slice.around(x, radius=radius, seed=seed)
    np.testing.assert_array_equal(again.basis, sl.basis)
    if d > 2:
        other = sc.Slice.around(x, radius=radius, seed=seed + 1)
        assert not np.allclose(other.basis, sl.basis)


@settings(max_examples=examples(60), deadline=None)
@given(
    seed=st.integers(0, 10**6),
    uv=arrays(np.float64, (7, 2), elements=st.floats(-1e3, 1e3, allow_nan=False)),
)
def test_to_plane_inverts_to_input(seed, uv):
    rng = np.random.default_rng(seed)
    origin = rng.normal(size=(2, 3))
    basis = rng.normal(size=(6, 2))  # not orthonormal: to_plane is a least-squares solve
    sl = sc.Slice(origin, basis, [[-1, -1], [1, -1], [1, 1], [-1, 1]])
    x = sl.to_input(uv)
    assert x.shape == (7, 2, 3)
    cond = np.linalg.cond(basis)
    np.testing.assert_allclose(sl.to_plane(x), uv, rtol=0, atol=1e-12 * cond * (1 + np.abs(uv).max() + np.abs(origin).max()))


def test_to_input_dtype_and_single_point():
    sl = sc.Slice.box((0, 0), (1, 2))
    x = sl.to_input([0.5, 0.25], dtype=torch.float32)
    assert x.shape == (1, 2) and x.dtype == torch.float32
    assert x.tolist() == [[0.5, 0.25]]


def test_box():
    sl = sc.Slice.box((-2, 1), (3, 4))
    np.testing.assert_array_equal(sl.basis, np.eye(2))
    np.testing.assert_array_equal(sl.origin, [0, 0])
    assert sl.area == 15.0 and sl.input_shape == (2,)
    np.testing.assert_array_equal(sl.polygon, [[-2, 1], [3, 1], [3, 4], [-2, 4]])


@pytest.mark.parametrize("poly,expected", [
    ([[0, 0], [0, 1], [1, 1], [1, 0]], [[1, 0], [1, 1], [0, 1], [0, 0]]),          # clockwise -> reversed
    ([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], [[0, 0], [1, 0], [1, 1], [0, 1]]),  # closing vertex dropped
    ([[0, 0], [0.5, 0], [1, 0], [1, 1], [0, 1]], [[0, 0], [1, 0], [1, 1], [0, 1]]),  # collinear dropped
    ([[0, 0], [2, 0], [0, 2]], [[0, 0], [2, 0], [0, 2]]),
])
def test_polygon_normalised_ccw(poly, expected):
    sl = sc.Slice(np.zeros(2), np.eye(2), poly)
    np.testing.assert_array_equal(sl.polygon, np.array(expected, dtype=np.float64))
    assert sl.area > 0


def test_repr_mentions_shape():
    sl = sc.Slice.around(np.zeros((3, 4)), radius=2.0)
    assert "(3, 4)" in repr(sl)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_collinear_points_are_judged_in_their_own_precision(dtype):
    """x, 2x, 3x: in float32 the second axis is rounding noise (it used to be accepted, with a
    height of 7.7e-7 against a width of 8.37); rejected in every dtype, as in float64."""
    x = torch.randn(64, generator=torch.Generator().manual_seed(0)).to(dtype)
    with pytest.raises(ValueError, match="one line .*precision of their dtype"):
        sc.Slice.from_points(x, 2 * x, 3 * x)
    with pytest.raises(ValueError, match="one line .*precision of their dtype"):
        sc.Slice.from_points(x.numpy() if dtype in (torch.float32, torch.float64) else x, x, 2 * x)
    noisy = x + torch.randn(64, generator=torch.Generator().manual_seed(1)).to(dtype)  # a real second axis
    sl = sc.Slice.from_points(x, 2 * x, noisy)
    assert abs(sl.anchors_uv[2, 1]) > 0.1


def test_a_basis_is_judged_in_its_own_precision():
    col = torch.randn(10, 1, generator=torch.Generator().manual_seed(0))
    almost = torch.cat([col, col * (1 + 1e-7)], 1)  # dependent up to float32 rounding
    with pytest.raises(ValueError, match="rank-deficient"):
        sc.Slice(torch.zeros(10), almost, [[0, 0], [1, 0], [0, 1]])
    sc.Slice(torch.zeros(10), almost.double() + torch.eye(10, 2, dtype=torch.float64) * 1e-6, [[0, 0], [1, 0], [0, 1]])


def test_slice_from_data_skips_points_collinear_in_float32():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, generator=gen)
    X = torch.stack([x, 2 * x, 3 * x, x + torch.randn(16, generator=gen)])  # float32; the third is noise-collinear
    y = torch.tensor([0, 1, 0, 1])
    sl = sc.Slice.from_data(X, y, classes=(0, 1), seed=0)
    third = sl.to_input(sl.anchors_uv[2]).reshape(-1).float()
    assert torch.allclose(third, X[3], atol=1e-5)  # not 3x, collinear with x and 2x up to float32 rounding
