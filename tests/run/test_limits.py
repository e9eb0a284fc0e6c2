"""Limits that end a run: time limit, region limit (default from the memory available),
Ctrl-C; partial results; splits bounded by their memory budget."""

from __future__ import annotations

import importlib
import time

import numpy as np
import pytest
import torch
from helpers import TickingClock, seconds_to_stop
from torch import nn

import splinecam as sc
from splinecam.geometry import compiled
from splinecam.run import chain as chain_module
from splinecam.run import watch as watch_module

partition_module = importlib.import_module("splinecam.partition")  # the module, not the function


def _wide(width=200, seed=0):
    """One wide layer: a single split of the slice makes ~width^2 / 2 pieces."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, 8), nn.ReLU(), nn.Linear(8, 3)).eval()


def _cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4, 3)).eval()


BOX = sc.Slice.box((-3, -3), (3, 3))


def _check_partial(part: sc.Partition, sl: sc.Slice) -> None:
    """A partial result: exact regions (maps, codes), distinct codes, less area than the slice."""
    assert not part.complete and len(part) > 0
    rep = part.verify(300)
    assert rep.ok, str(rep)
    assert not rep.complete and 0 < rep.area_covered < 1
    assert len(np.unique(part.arrays.packed_codes, axis=0)) == len(part)
    assert 0 < part.areas.sum() < sl.area * (1 - 1e-9)


def _deep(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                         nn.Linear(16, 3)).eval()


def test_timeout_gives_exact_partial_result(tmp_path, monkeypatch):
    clock = TickingClock()
    monkeypatch.setattr(watch_module, "time", clock)
    monkeypatch.setattr(partition_module, "time", clock)
    model, sl = _deep(), sc.Slice.box((-0.5, -0.5), (0.5, 0.5))
    full = sc.partition(model, sl, progress=False, chunk_size=4)
    readings = clock.now / 1e-3
    with pytest.raises(sc.TimeLimitError, match="timeout=") as info:
        sc.partition(model, sl, progress=False, timeout=readings * 1e-3 / 2, chunk_size=4)
    part = info.value.partial
    _check_partial(part, sl)
    assert len(part) < len(full)
    assert "partial" in repr(part)
    part.save(tmp_path / "p.npz")
    back = sc.Partition.load(tmp_path / "p.npz")
    assert not back.complete and len(back) == len(part)
    assert back.verify(model=model, n_points=200).ok


def test_timeout_counts_real_time():
    model, sl = _wide(800), BOX  # over 10 s on this machine
    sc.partition(_wide(3), sl, progress=False)  # the first run in a process pays for imports
    t0 = time.perf_counter()
    with pytest.raises(sc.TimeLimitError):
        sc.partition(model, sl, progress=False, timeout=0.5)
    assert time.perf_counter() - t0 < 0.5 + 4


def _image_slice(seed, radius=0.5):
    return sc.Slice.around(torch.randn(1, 6, 6, generator=torch.Generator().manual_seed(seed)), radius=radius, seed=seed)


def test_region_limit_gives_exact_partial_result():
    model, sl = _cnn(), _image_slice(1)
    full = sc.partition(model, sl, progress=False)
    assert full.complete and full.verify(300).ok
    with pytest.raises(sc.RegionLimitError) as info:
        sc.partition(model, sl, progress=False, max_regions=len(full) - 1, chunk_size=4)
    part = info.value.partial
    _check_partial(part, sl)
    assert len(part) < len(full)
    # the finished regions are regions of the full partition
    idx = full.locate(part.centroids)
    np.testing.assert_allclose(part.areas, full.areas[idx], rtol=1e-9)
    np.testing.assert_array_equal(part.codes, full.codes[idx])


def test_limit_before_any_region_gives_empty_partial():
    with pytest.raises(sc.RegionLimitError) as info:
        sc.partition(_wide(), BOX, progress=False, max_regions=5)
    part = info.value.partial
    assert len(part) == 0 and not part.complete and part.affine.shape == (0, 3, 3)


@pytest.mark.parametrize("make, sl", [
    (lambda: _wide(40), sc.Slice.box((-1, -1), (1, 1))),
    (_cnn, _image_slice(2)),
])
def test_split_budget_does_not_change_the_partition(make, sl):
    """A tiny budget makes every split stop early and hand back unfinished pieces, which are
    split again: the same regions (by area, map and code) as in one go."""
    model = make()
    ref = sc.partition(model, sl, progress=False, max_memory="1GB")
    part = sc.partition(model, sl, progress=False, max_memory="20KB")
    assert len(part) == len(ref)
    idx = ref.locate(part.centroids)
    assert len(np.unique(idx)) == len(part)
    np.testing.assert_allclose(part.areas, ref.areas[idx], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(part.affine, ref.affine[idx], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(part.codes, ref.codes[idx])
    assert part.verify(300).ok


def test_default_region_limit_follows_available_memory(monkeypatch):
    monkeypatch.setattr(partition_module, "available_memory", lambda: 1)
    with pytest.raises(sc.RegionLimitError, match="available memory"):
        sc.partition(_wide(), BOX, progress=False)


def test_progress_shows_regions_and_op(capsys):
    sc.partition(_wide(30), sc.Slice.box((-2, -2), (2, 2)), progress=True, max_memory="64KB")
    err = capsys.readouterr().err
    assert "regions" in err and "% of the slice" in err


def test_bad_timeout_is_rejected():
    with pytest.raises(ValueError, match="timeout"):
        sc.partition(_wide(10), BOX, progress=False, timeout=-1)


# --- limits inside a huge first split, with the compiled kernels (the default install) ---------------------


class _Wrapped(nn.Module):
    """A plain MLP behind a module of its own: not an ``nn.Sequential``, so the engine runs it."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def _huge(path: str, seed: int = 0) -> nn.Module:
    """2-3000-8-1 with random biases: its first split alone makes millions of pieces on ``BOX``
    (the records of one unbounded split would take over 10 GB)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 3000), nn.ReLU(), nn.Linear(3000, 8), nn.ReLU(), nn.Linear(8, 1)).eval()
    with torch.no_grad():
        model[0].bias.uniform_(-2, 2)
        model[2].bias.normal_()
    return model if path == "fast" else _Wrapped(model)


@pytest.fixture(params=["fast", "engine"])
def path(request, monkeypatch):
    """Runs on the MLP fast path or on the engine, with the compiled kernels; fails if the other
    path runs."""
    assert compiled.AVAILABLE, "the compiled kernels are part of the default install"
    sc.partition(_wide(3), BOX, progress=False)  # imports and compilation before any clock starts
    sc.partition(_Wrapped(_wide(3)), BOX, progress=False)

    def refuse(*args, **kwargs):
        raise AssertionError("the other path ran")

    if request.param == "fast":
        monkeypatch.setattr(partition_module, "partition_graph", refuse)
    else:
        monkeypatch.setattr(chain_module.ChainRun, "run", refuse)
    return request.param


@pytest.fixture
def calls(monkeypatch) -> list:
    """Per call of the compiled elementwise split: (pieces, rest, bytes of everything it returned)."""
    out = []
    original = compiled.breakpoint_split

    def spy(*args):
        res = original(*args)
        out.append((len(res[3]), len(res[8]), sum(a.nbytes for a in res)))
        return res

    monkeypatch.setattr(compiled, "breakpoint_split", spy)
    return out


def test_timeout_inside_a_huge_first_split(path, calls):
    t0 = time.perf_counter()
    with pytest.raises(sc.TimeLimitError) as info:
        sc.partition(_huge(path), BOX, progress=False, timeout=1.5)
    assert time.perf_counter() - t0 < 1.5 + 2
    assert calls[0][1] > 0  # the first call stopped inside the first split, with pieces left
    _check_partial(info.value.partial, BOX)


def test_region_limit_inside_a_huge_first_split(path, calls):
    with pytest.raises(sc.RegionLimitError) as info:
        sc.partition(_huge(path), BOX, progress=False, max_regions=1500, max_memory="4MB", timeout=30)
    part = info.value.partial
    _check_partial(part, BOX)
    assert len(part) <= 1500 and calls[0][1] > 0


def test_a_split_holds_its_records_within_max_memory(path, calls):
    """Every compiled call returns at most the pieces whose records fit the budget (codes, sides
    and polygons), and all it returns stays within the budget: nothing grows with the size of the
    arrangement.  The run goes on (here until its time limit) with exact finished regions."""
    budget = 2 * 10**6
    with pytest.raises(sc.TimeLimitError) as info:
        sc.partition(_huge(path), BOX, progress=False, max_memory=budget, timeout=2)
    assert len(calls) > 3 and calls[0][1] > 0
    first_layer = 3000 + compiled.PIECE_BYTES  # bits of a code and bytes of a polygon per piece, at least
    assert max(c[0] for c in calls) <= budget // first_layer
    assert max(c[2] for c in calls) <= budget + 3 * 3000 * 8 * 40  # pieces' records; rest and lines of a few regions
    _check_partial(info.value.partial, BOX)


def test_ctrl_c_inside_a_huge_first_split(path, calls, ctrl_c):
    delay = seconds_to_stop(lambda: sc.partition(_huge(path), BOX, progress=False, timeout=60), ctrl_c)
    assert delay < 2, f"stopped {delay:.1f} s after Ctrl-C"
    assert calls and calls[0][1] > 0
