"""The traced graph is reused for a model whose weights changed (training videos, studies), and
the partition always follows the current weights and settings; the user's model is untouched."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import fx, nn

from helpers import random_mlp, run


def same_partition(a, b) -> None:
    """Equal region counts, codes (as sets), areas and maps, region by region through the codes."""
    assert len(a) == len(b)
    ka = {c.tobytes(): r for r, c in enumerate(a.codes)}
    kb = {c.tobytes(): r for r, c in enumerate(b.codes)}
    assert ka.keys() == kb.keys()
    ia, ib = list(ka.values()), [kb[k] for k in ka]
    np.testing.assert_allclose(a.areas[ia], b.areas[ib], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a.affine[ia], b.affine[ib], rtol=1e-12, atol=1e-12)


def count_traces(monkeypatch) -> list:
    calls = []
    original = fx.Tracer.trace

    def counting(self, root, *args, **kwargs):
        calls.append(root)
        return original(self, root, *args, **kwargs)

    monkeypatch.setattr(fx.Tracer, "trace", counting)
    return calls


def test_changed_weights_give_the_new_partition_without_tracing_again(monkeypatch):
    calls = count_traces(monkeypatch)
    model = random_mlp([8, 8], 1, seed=0, extras=True)  # BatchNorm: traced (a plain MLP is not)
    first = run(model)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-1.5).add_(0.25)
    before = [p.clone() for p in model.parameters()]
    second = run(model)
    assert len(calls) == 1
    same_partition(second, run(copy.deepcopy(model)))  # a fresh object is traced afresh
    assert len(calls) == 2
    assert not np.array_equal(first.affine[:1], second.affine[:1]) or len(first) != len(second)
    assert all(p.dtype == torch.float32 and torch.equal(p, q) for p, q in zip(model.parameters(), before))
    # the first partition keeps its own weights: its check against its model still holds
    assert first.verify(n_points=200).ok and second.verify(n_points=200).ok


class Skip(nn.Module):
    """relu(W2 relu(W1 x)) with a residual connection that a flag switches on and off."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(3)
        self.a, self.b, self.out = nn.Linear(2, 6), nn.Linear(6, 6), nn.Linear(6, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
        self.skip = True

    def forward(self, x):
        h = torch.relu(self.a(x))
        g = self.b(h)
        if self.skip:
            g = g + h
        return self.out(torch.relu(g))


def test_a_changed_setting_traces_again(monkeypatch):
    calls = count_traces(monkeypatch)
    model = Skip().eval()
    with_skip = run(model)
    model.skip = False
    without = run(model)
    assert len(calls) == 2
    same_partition(without, run(copy.deepcopy(model)))
    assert without.verify(n_points=300).ok and with_skip.verify(n_points=300).ok
    model.train()  # a mode is a setting too
    run(model)
    assert len(calls) == 4
