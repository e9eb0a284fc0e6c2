"""A zoo of piecewise-linear architectures: CNNs, pooling, residual blocks, maxout, mixed activations.

For each model: the regions tile the slice, the region maps and codes match the
network at thousands of points, and the number of regions is at least the
number of distinct activation codes seen on a fine grid (equal for these tiny nets).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import splinecam as sc
from zoo_models import CASES, _setup




















def grid_codes(part, model, n: int) -> int:
    """Distinct activation codes on an n x n grid of cell centres inside the slice's box."""
    graph = part.graph
    lo, hi = part.slice.polygon.min(0), part.slice.polygon.max(0)
    t = (np.arange(n) + 0.5) / n
    uv = np.stack(np.meshgrid(lo[0] + t * (hi[0] - lo[0]), lo[1] + t * (hi[1] - lo[1])), -1).reshape(-1, 2)
    codes = []
    x = part.slice.to_input(uv)
    graph.forward(x, on_split=lambda layer, z: codes.append(graph.split_nodes[layer].op.code(z)))
    all_codes = torch.cat(codes, 1).numpy()
    return len(np.unique(np.packbits(all_codes, axis=1), axis=0))


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "cnn1d" else n for n in sorted(CASES)])
def test_zoo_partition_is_exact(name):
    model, sl, grid = _setup(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    part = sc.partition(model, sl, progress=False)
    assert abs(part.areas.sum() - sl.area) <= 1e-9 * sl.area
    assert (part.areas > 0).all()
    report = part.verify(n_points=4000)
    assert report.ok, str(report)
    seen = grid_codes(part, model, grid or 300)
    assert seen <= len(part)
    if grid:
        assert seen == len(part)
    # minimal: a code fixes every unit's piece, so its points form one convex region
    assert len(np.unique(np.packbits(part.codes, axis=1), axis=0)) == len(part)
    assert part.codes.shape[1] == sum(layer.bits for layer in part.layers)
    # the user's model is untouched
    assert not model.training
    for k, v in model.state_dict().items():
        assert v.dtype == before[k].dtype and torch.equal(v, before[k])
