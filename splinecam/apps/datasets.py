"""Small 2-D toy data sets, generated with numpy (no downloads)."""

from __future__ import annotations

import numpy as np

__all__ = ["two_circles", "two_moons"]


def _check(n: int, noise: float) -> None:
    if int(n) != n or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}.")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}.")


def two_moons(n: int = 200, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles.  Returns X (n, 2) float64 and y (n,) int64 in {0, 1}.

    Class 0: the upper arc of the unit circle; class 1: the lower arc shifted
    by (1, 0.5); both with Gaussian noise of standard deviation ``noise``.
    """
    _check(n, noise)
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = rng.uniform(0, np.pi, n)
    X = np.where(
        (y == 0)[:, None],
        np.stack([np.cos(t), np.sin(t)], 1),
        np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1),
    )
    return X + noise * rng.standard_normal((n, 2)), y.astype(np.int64)


def two_circles(n: int = 200, noise: float = 0.05, seed: int = 0, factor: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric circles.  Returns X (n, 2) float64 and y (n,) int64 in {0, 1}.

    Class 0: the unit circle; class 1: the circle of radius ``factor``; both
    with Gaussian noise of standard deviation ``noise``.
    """
    _check(n, noise)
    if not 0 < factor < 1:
        raise ValueError(f"factor must be in (0, 1), got {factor!r}.")
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = rng.uniform(0, 2 * np.pi, n)
    r = np.where(y == 0, 1.0, factor)
    X = r[:, None] * np.stack([np.cos(t), np.sin(t)], 1)
    return X + noise * rng.standard_normal((n, 2)), y.astype(np.int64)
