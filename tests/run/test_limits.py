"""Limits that end a run: time limit, region limit (default from the memory available),
Ctrl-C; partial results; splits bounded by their memory budget."""

from __future__ import annotations

import _thread
import importlib
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

import splinecam as sc
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


class _Clock:
    """A fake ``time`` module for the engine: every reading advances by 1 ms."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 1e-3
        return self.now


def test_timeout_gives_exact_partial_result(tmp_path, monkeypatch):
    clock = _Clock()
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


def test_ctrl_c_stops_promptly():
    """Ctrl-C (SIGINT to the main thread) during a long single split ends the run quickly."""
    fired = []

    def interrupt():
        fired.append(time.perf_counter())
        _thread.interrupt_main()

    sc.partition(_wide(3), BOX, progress=False)  # imports and compilation first: Ctrl-C must land in the run
    timer = threading.Timer(1.0, interrupt)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            sc.partition(_wide(3000), sc.Slice.box((-4, -4), (4, 4)), progress=False, timeout=60)
        stopped = time.perf_counter()
    finally:
        timer.cancel()
    assert fired and stopped - fired[0] < 5, f"stopped {stopped - fired[0]:.1f} s after Ctrl-C"


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
