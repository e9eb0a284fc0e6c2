"""Batches gathered before a wide product on small states (``Plan.gathers``: a CNN's wide first
maps make small chunks, its late linear layers want many rows) give exactly the partition of
the run without gathering: the same regions, codes and edge units, maps to 1e-9; with
residual sums and concatenation, trained-like BatchNorm, integer weights; the gathered batches
stay within the plan's size; and under a region or time limit the partial result is finished
regions of that partition (the parked regions counted as pending)."""

import importlib

import numpy as np
import pytest
import torch
from torch import nn

import splinecam as sc
from helpers import TickingClock, assert_same_partition, keyed
from splinecam.run import plan as plan_module
from splinecam.run import watch as watch_module
from splinecam.run.stack import WorkStack


class Funnel(nn.Module):
    """1x32x32 -> conv 16 (+ BatchNorm) -> ReLU -> max-pool 4 -> 1024 -> Linear 1024 -> ReLU
    (``residual``: plus its input, concatenated with it) -> 3: the linear layer (1M
    multiply-adds a sample) gathers the batches of the conv's chunks."""

    def __init__(self, residual: bool, seed: int, integer: bool = False):
        super().__init__()
        torch.manual_seed(seed)
        self.conv, self.bn = nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.fc1, self.fc2 = nn.Linear(1024, 1024), nn.Linear(2048 if residual else 1024, 3)
        self.residual = residual
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.bn.running_mean.copy_(0.2 * torch.randn(16, generator=gen))
            self.bn.running_var.copy_(0.5 + torch.rand(16, generator=gen))
            self.bn.weight.copy_(0.5 + torch.rand(16, generator=gen))
            self.bn.bias.copy_(0.3 * torch.randn(16, generator=gen))
            if integer:
                for p in (self.conv.weight, self.conv.bias, self.fc1.weight, self.fc1.bias):
                    p.copy_(torch.randint(-2, 3, p.shape, generator=gen) * (0.25 if p is self.fc1.weight else 1.0))
        self.eval()

    def forward(self, x):
        h = nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 4).flatten(1)
        z = torch.relu(self.fc1(h))
        return self.fc2(torch.cat([z + h, h], 1) if self.residual else z)


def _slice(seed: int, radius: float = 0.05) -> sc.Slice:
    return sc.Slice.around(torch.randn(1, 32, 32, generator=torch.Generator().manual_seed(seed)), radius=radius, seed=seed)


def _gathered(monkeypatch) -> list:
    """Spy on the gathered batches: (node, regions) of each."""
    seen, release = [], WorkStack.release

    def spy(self, node):
        batch = release(self, node)
        seen.append((node, len(batch), self.plan.gathers[node], max(self.plan.chunks.values())))
        return batch

    monkeypatch.setattr(WorkStack, "release", spy)
    return seen


def _without_gathers(model, sl, **options):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plan_module, "GATHER_COST", float("inf"))
        return sc.partition(model, sl, progress=False, **options)


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("seed, memory", [(0, "128MB"), (1, "12MB")])
def test_gathered_batches_give_the_same_partition(monkeypatch, residual, seed, memory):
    """With the default budget, all regions gather before the linear layer (released when
    nothing else is left); with a small one, in several batches as they fill up."""
    model, sl = Funnel(residual, seed), _slice(seed)
    plain = _without_gathers(model, sl, max_memory=memory)
    seen = _gathered(monkeypatch)
    part = sc.partition(model, sl, progress=False, max_memory=memory)
    assert_same_partition(part, plain)
    assert len(part) > 50
    assert sum(n for _, n, _, _ in seen) >= len(part) and any(n > 16 for _, n, _, _ in seen)  # batches were gathered
    assert len(seen) >= (1 if memory == "128MB" else 2)
    assert all(n <= limit + chunk for _, n, limit, chunk in seen)  # within the gather size (plus one batch)


def test_integer_weights_are_the_same_partition():
    model, sl = Funnel(True, 3, integer=True), _slice(3, radius=0.1)
    plain = _without_gathers(model, sl)
    assert_same_partition(sc.partition(model, sl, progress=False), plain)


def test_a_region_limit_counts_the_parked_regions_and_hands_back_finished_ones():
    """(Regions wait at the gather node until it fills or nothing else is left, so a limit
    reached before may leave none finished.)"""
    model, sl = Funnel(False, 4), _slice(4)
    full = sc.partition(model, sl, progress=False)
    for limit, memory in [(len(full) - 1, "12MB"), (len(full) - 1, "128MB"), (len(full) // 2, "12MB")]:
        with pytest.raises(sc.RegionLimitError) as err:
            sc.partition(model, sl, progress=False, max_regions=limit, max_memory=memory)
        partial = err.value.partial
        assert len(partial) < len(full) and not partial.complete
        whole = keyed(full)
        assert all(k in whole for k in keyed(partial))
        i = np.array([whole[k] for k in keyed(partial)], dtype=np.int64)
        np.testing.assert_allclose(partial.areas, full.areas[i], rtol=0, atol=1e-9 * full.slice.area)


def test_a_time_limit_hands_back_finished_regions(monkeypatch):
    clock = TickingClock()
    monkeypatch.setattr(watch_module, "time", clock)
    monkeypatch.setattr(importlib.import_module("splinecam.partition"), "time", clock)
    model, sl = Funnel(True, 5), _slice(5)
    start = clock.now
    full = sc.partition(model, sl, progress=False, max_memory="12MB")  # batches gathered as they fill up
    readings = (clock.now - start) / 1e-3
    with pytest.raises(sc.TimeLimitError) as err:
        sc.partition(model, sl, progress=False, timeout=readings * 1e-3 * 0.8, max_memory="12MB")
    partial = err.value.partial
    assert 0 < len(partial) < len(full)
    whole = keyed(full)
    assert all(k in whole for k in keyed(partial))
    assert partial.verify(n_points=300).ok
