"""Max-type splits settle most windows from the candidates' bounds over each region's bounding
box, and only the others at the region's vertices: the same winners and unsettled windows as
evaluating every window at every vertex (the plain rule, written out here), on random,
integer and tied candidates (exact zeros: a max-pool after a ReLU; duplicates; padded
windows); and the same partitions of CNNs with max-pooling, residual blocks and integer weights."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import splinecam as sc
from helpers import assert_same_partition, examples
from splinecam.geometry import Polygons, plane_tolerance
from splinecam.ops import SplitContext
from splinecam.ops import maxtype
from zoo_models import _setup, _with_stats


def plain_settled_winners(polys, lines, safe, valid, ctx):
    """Every window of every region at every vertex: the lowest candidate within tolerance of
    the max at all of them, and whether there is none."""
    h = polys.homogeneous_padded()
    cand = lines[:, :, safe]  # (R, 1 + d, O, k)
    vals = torch.einsum("rvj,rjok->rvok", h, cand).masked_fill(~valid, -torch.inf)
    size = plane_tolerance(cand[:, :-1].unbind(1), cand[:, -1], ctx.extent, 1.0).masked_fill(~valid, 0)
    tol = 2 * ctx.rtol * size.amax(-1)
    wins = (vals >= vals.amax(-1, keepdim=True) - tol[:, None, :, None]).all(1) & valid
    return wins.to(torch.int8).argmax(-1), ~wins.any(-1)


@st.composite
def windows(draw):
    """(polygons, lines (R, 3, N), safe, valid, ctx): small boxes about random points; units
    that are exact zeros, duplicates of others, integers or random; windows of k candidates,
    some padded."""
    seed = draw(st.integers(0, 10**6))
    gen = torch.Generator().manual_seed(seed)
    r, n, k = draw(st.integers(1, 6)), draw(st.integers(2, 30)), draw(st.integers(1, 5))
    centre = torch.randn(r, 1, 2, generator=gen, dtype=torch.float64)
    size = draw(st.sampled_from([1e-3, 0.1, 1.0]))
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], dtype=torch.float64)
    verts = (centre + size * corners * (0.5 + torch.rand(r, 4, 1, generator=gen, dtype=torch.float64))).reshape(-1, 2)
    polys = Polygons.from_numpy(verts.numpy(), np.arange(0, 4 * r + 1, 4))
    lines = torch.randn(r, 3, n, generator=gen, dtype=torch.float64)
    if draw(st.booleans()):
        lines = lines.mul(3).round()
    kind = torch.randint(0, 3, (n,), generator=gen)
    lines[:, :, kind == 0] = 0  # dead units: every candidate of some windows is zero
    twin = torch.randint(0, n, (n,), generator=gen)
    lines[:, :, kind == 1] = lines[:, :, twin[kind == 1]]  # duplicates: ties
    safe = torch.randint(0, n, (draw(st.integers(1, 12)), k), generator=gen)
    valid = torch.rand(safe.shape, generator=gen) < draw(st.sampled_from([1.0, 0.7]))
    valid[:, 0] = True
    ctx = SplitContext(1e-9, torch.tensor([2.0, 2.0], dtype=torch.float64), 0, lambda n: None, 1 << 20)
    return polys, lines, safe, valid, ctx


@settings(max_examples=examples(200), deadline=None)
@given(case=windows())
def test_the_same_winners_as_every_vertex(case):
    winner, unsettled = maxtype._settled_winners(*case)
    plain_winner, plain_unsettled = plain_settled_winners(*case)
    assert torch.equal(unsettled, plain_unsettled)
    assert torch.equal(winner.long()[~unsettled], plain_winner[~plain_unsettled])


@pytest.mark.parametrize("below", [0.4, 0.9, 1.1])
def test_a_first_candidate_within_tolerance_below_the_max_wins(below):
    """Candidates 1 - below * tol and 1 (tol = 2 rtol, the size of a constant 1): within the
    tolerance (below < 1) the first one wins at every vertex, though it is never the max."""
    polys = Polygons.from_numpy(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]), np.array([0, 4]))
    ctx = SplitContext(1e-9, torch.tensor([2.0, 2.0], dtype=torch.float64), 0, lambda n: None, 1 << 20)
    lines = torch.zeros(1, 3, 2, dtype=torch.float64)
    lines[0, 2] = torch.tensor([1 - below * 2e-9, 1.0], dtype=torch.float64)
    safe, valid = torch.tensor([[0, 1]]), torch.ones(1, 2, dtype=torch.bool)
    winner, unsettled = maxtype._settled_winners(polys, lines, safe, valid, ctx)
    assert not unsettled.any() and int(winner[0, 0]) == (0 if below < 1 else 1)
    assert torch.equal(winner.long(), plain_settled_winners(polys, lines, safe, valid, ctx)[0])


def _both(model, sl, **options):
    """(the plain rule, the default) partitions."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(maxtype, "_settled_winners", plain_settled_winners)
        plain = sc.partition(model, sl, progress=False, **options)
    return plain, sc.partition(model, sl, progress=False, **options)


@pytest.mark.parametrize("name", ["vgg", "resnet"])
def test_zoo_cnns_are_the_same_partition(name):
    model, sl, _ = _setup(name)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.bias.copy_(0.3 * torch.randn(m.num_features, generator=gen))
    plain, part = _both(_with_stats(model), sl)
    assert_same_partition(part, plain)
    assert len(part) > 10


def test_integer_weights_are_the_same_partition():
    """Integer kernels on an integer slice: tied candidates and lines through the same vertices."""
    gen = torch.Generator().manual_seed(7)
    model = nn.Sequential(nn.Conv2d(1, 3, 2, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 2, 2), nn.ReLU(),
                          nn.MaxPool2d(2, 1), nn.Flatten(), nn.Linear(2, 2)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randint(-2, 3, p.shape, generator=gen))
    origin = torch.randint(-1, 2, (1, 6, 6), generator=gen).double()
    basis = np.stack([np.eye(36)[7], np.eye(36)[14]], 1)
    sl = sc.Slice(origin, basis, np.array([[-2.0, -2.0], [2.0, -2.0], [2.0, 2.0], [-2.0, 2.0]]))
    plain, part = _both(model, sl)
    assert_same_partition(part, plain)
    assert len(part) > 5
