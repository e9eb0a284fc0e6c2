"""Regions matched across two partitions of one slice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import splinecam as sc
from helpers import random_mlp, run


def test_same_weights_is_the_identity():
    model = random_mlp([8, 8], 3, 0)
    a, b = run(model), run(model)
    m = sc.match_regions(a, b)
    np.testing.assert_array_equal(m.kept, np.stack([np.arange(len(a))] * 2, 1))
    assert len(m.died) == len(m.born) == 0


def test_after_a_training_step():
    torch.manual_seed(0)
    model = random_mlp([8, 8], 1, 3)
    a = run(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.rand(64, 2) * 2 - 1
    loss = ((model(x)[:, 0] - x[:, 0] * x[:, 1]) ** 2).mean()
    loss.backward()
    opt.step()
    b = run(model)
    m = sc.match_regions(a, b)
    assert len(m.kept) and (len(m.died) or len(m.born))
    np.testing.assert_array_equal(a.codes[m.kept[:, 0]], b.codes[m.kept[:, 1]])
    assert len(m.kept) + len(m.died) == len(a) and len(m.kept) + len(m.born) == len(b)
    assert not set(map(tuple, a.codes[m.died])) & set(map(tuple, b.codes))
    # a died region overlaps its successor: some point of it lies there, and no region overlaps more
    shapely = pytest.importorskip("shapely")
    for d, into in zip(m.died, m.died_into):
        pd = shapely.Polygon(a.polygons[d])
        overlap = [pd.intersection(shapely.Polygon(q)).area for q in b.polygons]
        assert into == int(np.argmax(overlap)) and overlap[into] > 0
    for n, frm in zip(m.born, m.born_from):
        pn = shapely.Polygon(b.polygons[n])
        overlap = [pn.intersection(shapely.Polygon(q)).area for q in a.polygons]
        assert overlap[frm] == pytest.approx(max(overlap), rel=1e-9)


def test_other_slice_is_an_error():
    model = random_mlp([4], 1, 0)
    a = run(model)
    b = run(model, sc.Slice.box((-2, -2), (2, 2)))
    with pytest.raises(ValueError, match="same slice"):
        sc.match_regions(a, b)
