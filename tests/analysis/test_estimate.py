"""``sc.estimate``: the first layer's lines, a lower bound on the regions, a projection."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import splinecam as sc


def test_lower_bound_is_exact_for_one_layer_and_bounds_deeper_models():
    torch.manual_seed(0)
    first = nn.Linear(2, 20)
    one = nn.Sequential(first, nn.ReLU(), nn.Linear(20, 1)).eval()
    deep = nn.Sequential(first, nn.ReLU(), nn.Linear(20, 10), nn.ReLU(), nn.Linear(10, 2)).eval()
    sl = sc.Slice.box((-1, -1), (1, 1))
    est = sc.estimate(one, sl, probe_regions=20)
    assert est.lower_bound == len(sc.partition(one, sl, progress=False))
    assert 0 < est.lines <= 20 and est.first_layer == "1"
    deep_est = sc.estimate(deep, sl, probe_regions=20)
    assert deep_est.lower_bound == est.lower_bound <= len(sc.partition(deep, sl, progress=False))
    assert deep_est.probe_regions > 0 and deep_est.seconds_per_region > 0
    assert deep_est.regions >= deep_est.lower_bound and deep_est.bytes > 0
    assert "regions" in str(deep_est)


def test_max_type_first_layer_has_no_line_count():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 2), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4, 1)).eval()
    est = sc.estimate(model, sc.Slice.around(torch.rand(1, 3, 5), radius=0.5))
    assert est.lines is None and est.lower_bound == 1 and est.probe_regions >= 1


def test_unknown_option_is_rejected():
    with pytest.raises(TypeError, match="unknown option"):
        sc.estimate(nn.Sequential(nn.Linear(2, 1)), sc.Slice.box((-1, -1), (1, 1)), max_region=3)
