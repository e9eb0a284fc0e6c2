"""Sound bounds of trigonometric sums over boxes (splinecam.geometry.trig): every value,
derivative and second derivative at points of a box lies within its bounds."""

from __future__ import annotations

import numpy as np
from helpers import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from splinecam.geometry import Waves, sin_range


@settings(max_examples=examples(200), deadline=None)
@given(st.floats(-1e3, 1e3), st.floats(0, 7))
def test_sin_range_holds_sin_over_the_interval(lo, width):
    low, high = sin_range(np.array([lo]), np.array([lo + width]))
    s = np.sin(np.linspace(lo, lo + width, 2001))
    assert low[0] <= s.min() and s.max() <= high[0] and -1 <= low[0] <= high[0] <= 1


@settings(max_examples=examples(60), deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(0, 2), st.floats(1e-4, 2.0))
def test_bounds_hold_values_slopes_and_curvature_at_points_of_the_box(seed, linear, size):
    rng = np.random.default_rng(seed)
    J, K = 5, 3
    waves = Waves(rng.normal(0, 4, (J, 2)), rng.normal(0, 3, J), linear)
    M, m = rng.normal(0, 1, (K, J)), rng.normal(0, 1, K)
    centre, half = rng.normal(0, 2, (1, 2)), size * rng.uniform(0.1, 1, (1, 2))
    p = centre + half * rng.uniform(-1, 1, (400, 2))
    p[:4] = centre + half * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])  # the corners too
    lo, hi = waves.bounds(M, m, centre, half)
    f = waves.values(M, m, p)
    assert (lo <= f).all() and (f <= hi).all()
    slopes = waves.slopes(p)
    for i, (glo, ghi) in enumerate(waves.gradient(M, centre, half)):
        g = (slopes * waves.A[:, i]) @ M.T
        assert (glo <= g).all() and (g <= ghi).all()
    bend = waves.curvature(M, centre, half)[0]
    theta = p @ waves.A.T + waves.b
    sines = np.where(np.arange(J) < linear, 0.0, np.sin(theta))
    for col, (i, k) in enumerate(((0, 0), (0, 1), (1, 1))):
        assert (np.abs((sines * waves.A[:, i] * waves.A[:, k]) @ M.T) <= bend[:, col]).all()


@settings(max_examples=examples(60), deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.floats(1e-9, 1e-3))
def test_roots_bracket_the_sign_change_to_within_the_width(seed, width):
    # with every feature linear, f = M @ (A p + b) + m is affine along a segment: one known root
    rng = np.random.default_rng(seed)
    waves = Waves(rng.normal(0, 2, (3, 2)), rng.normal(0, 1, 3), linear=3)
    M, m = rng.normal(0, 1, 3), float(rng.normal())
    base, axis = rng.normal(0, 1, (5, 2)), rng.integers(0, 2, 5)
    slope = (M @ waves.A)[axis]  # df / d(coordinate axis)
    other = base[np.arange(5), 1 - axis]
    at = lambda x: np.where(axis == 0, x * (M @ waves.A)[0] + other * (M @ waves.A)[1],  # noqa: E731
                            other * (M @ waves.A)[0] + x * (M @ waves.A)[1]) + M @ waves.b + m
    root = -(at(np.zeros(5)) / slope)
    lo, hi = root - rng.uniform(0.1, 2, 5), root + rng.uniform(0.1, 2, 5)
    got = waves.roots(M, m, np.sign(slope), base, axis, lo, hi, width)
    assert np.abs(got - root).max() <= width
