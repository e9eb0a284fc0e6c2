"""Exact integrated gradients: equal to a 10^6-step Riemann sum, complete to float64 rounding,
shaped like the input, on random, integer-weight and trained models."""

from __future__ import annotations

import pytest
import torch
from helpers import pooled_cnn, random_mlp
from torch import nn
from trained_models import multiclass_mlp

import splinecam as sc

STEPS = 10**6


def _riemann(model, x, baseline, target, steps=STEPS, batch=50_000) -> torch.Tensor:
    """The midpoint Riemann sum of the integrated gradients (float64 autograd)."""
    m = model.double()
    total = torch.zeros_like(x, dtype=torch.float64)
    for s in range(0, steps, batch):
        alpha = (torch.arange(s, min(s + batch, steps), dtype=torch.float64) + 0.5) / steps
        xs = (baseline + alpha.reshape(-1, *[1] * x.dim()) * (x - baseline)).requires_grad_(True)
        (g,) = torch.autograd.grad(m(xs).reshape(len(xs), -1)[:, target].sum(), xs)
        total += g.sum(0)
    return (x - baseline) * total / steps


def _complete(model, x, baseline, ig, target) -> float:
    m = model.double()
    with torch.no_grad():
        gap = m(x[None]).reshape(-1)[target] - m(baseline[None]).reshape(-1)[target]
    return abs(float(ig.sum() - gap))


def _riemann_error_bound(model, x, baseline, target, steps=STEPS) -> torch.Tensor:
    """The midpoint rule's error bound for a piecewise-constant gradient: per breakpoint of the
    path, the jump of the gradient times |x - x'| / steps (each input)."""
    part = sc.partition(model, sc.Path.segment(baseline, x), progress=False)
    mids = torch.as_tensor((part.lo + part.hi) / 2)
    xs = (baseline + mids.reshape(-1, *[1] * x.dim()) * (x - baseline)).requires_grad_(True)
    (g,) = torch.autograd.grad(model.double()(xs).reshape(len(xs), -1)[:, target].sum(), xs)
    return (g[1:] - g[:-1]).abs().sum(0) * (x - baseline).abs() / steps


@pytest.mark.parametrize("integer, baseline, target, strict", [
    (False, [0.9, -0.3], 1, True), (False, [-0.8, 0.6], 1, False), (True, [0.9, -0.2], 0, False),
    (True, [-0.8, 0.6], 2, False)])
def test_equals_a_riemann_sum_and_is_complete(integer, baseline, target, strict):
    """Within the 10^6-step Riemann sum's own error bound (a jump of the gradient at a
    breakpoint costs the midpoint rule up to jump * |x - x'| / steps), and to 1e-6 where the
    Riemann sum is that accurate."""
    model = random_mlp([6, 6], 3, 5, integer=integer)
    x, baseline = torch.tensor([0.9, -0.7], dtype=torch.float64), torch.tensor(baseline, dtype=torch.float64)
    ig = sc.integrated_gradients(model, x, baseline, target=target, progress=False)
    assert ig.shape == x.shape and ig.dtype == torch.float64
    assert _complete(model, x, baseline, ig, target) <= 1e-10
    err = torch.abs(ig - _riemann(model, x, baseline, target))
    bound = _riemann_error_bound(model, x, baseline, target)
    assert torch.max(bound) > 0 and torch.all(err <= bound + 1e-12)
    if strict:  # a Riemann sum accurate to 1e-6
        assert torch.max(bound) <= 1e-6 and torch.max(err) <= 1e-6


def test_image_inputs_give_an_attribution_of_the_input_shape():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 4)).eval()
    with torch.no_grad():  # non-default statistics
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2)
        model[1].bias.uniform_(-0.3, 0.3)
    x, baseline = torch.rand(1, 6, 6), torch.zeros(1, 6, 6)
    ig = sc.integrated_gradients(model, x, baseline, progress=False)
    assert ig.shape == (1, 6, 6)
    target = int(model.double()(x[None].double()).argmax())  # the default: the top class at x
    assert _complete(model, x.double(), baseline.double(), ig, target) <= 1e-10
    assert torch.max(torch.abs(ig - _riemann(model, x.double(), baseline.double(), target, steps=10**5))) <= 1e-5


def test_a_max_pool_cnn_on_an_image_path_is_complete_and_equals_a_riemann_sum():
    """Max-pooling and a max over channels (with tied, duplicate channels) on an image path:
    exact IG is complete to 1e-10 and within the Riemann sum's own error bound."""
    model = pooled_cnn(4, duplicate=True, k=3).double()
    gen = torch.Generator().manual_seed(1)
    x, baseline = torch.rand(1, 6, 6, generator=gen, dtype=torch.float64), torch.zeros(1, 6, 6, dtype=torch.float64)
    ig = sc.integrated_gradients(model, x, baseline, target=1, progress=False)
    assert ig.shape == (1, 6, 6) and sc.partition(model, sc.Path.segment(baseline, x), progress=False).verify().ok
    assert _complete(model, x, baseline, ig, 1) <= 1e-10
    steps = 10**5
    err = torch.abs(ig - _riemann(model, x, baseline, 1, steps=steps))
    assert torch.all(err <= _riemann_error_bound(model, x, baseline, 1, steps=steps) + 1e-12)


def test_a_trained_model_is_complete_for_every_class():
    model, X, _ = multiclass_mlp()
    x, baseline = X[0].double(), X[300].double()
    for target in range(4):
        ig = sc.integrated_gradients(model, x, baseline, target=target, progress=False)
        assert _complete(model, x, baseline, ig, target) <= 1e-10


def test_bad_targets_say_what_to_do():
    model = random_mlp([4], 2, 0)
    with pytest.raises(ValueError, match="target"):
        sc.integrated_gradients(model, torch.ones(2), torch.zeros(2), target=2)
    with pytest.raises(ValueError, match="coincide"):
        sc.integrated_gradients(model, torch.ones(2), torch.ones(2))


def test_the_user_model_is_not_changed():
    model = random_mlp([4, 4], 2, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sc.integrated_gradients(model, torch.ones(2), torch.zeros(2), progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert next(model.parameters()).dtype == torch.float32 and not model.training
