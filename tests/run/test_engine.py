"""The engine's chunking and options do not change the partition."""

import numpy as np
import pytest
import torch
from torch import nn

import splinecam as sc
from splinecam.partition import parse_bytes


def _model(seed=0, k=3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 24), nn.ReLU(), nn.Linear(24, 24), nn.LeakyReLU(0.2), nn.Linear(24, k)).eval()


@pytest.mark.parametrize("chunk_size", [1, 7, 100])
def test_chunking_gives_the_same_partition(chunk_size):
    model, sl = _model(), sc.Slice.box((-1.5, -1), (1, 2))
    ref = sc.partition(model, sl, progress=False)
    part = sc.partition(model, sl, progress=False, chunk_size=chunk_size)
    assert len(part) == len(ref)
    assert np.isclose(part.areas.sum(), sl.area, rtol=1e-12)
    # the same regions, in another order: match by centroid
    idx = ref.locate(part.centroids)
    assert np.all(idx >= 0) and len(np.unique(idx)) == len(part)
    np.testing.assert_allclose(part.areas, ref.areas[idx], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(part.affine, ref.affine[idx], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(part.codes, ref.codes[idx])


def test_progress_false_prints_nothing(capsys):
    sc.partition(_model(), sc.Slice.box((-1, -1), (1, 1)), progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_true_shows_a_bar(capsys):
    sc.partition(_model(), sc.Slice.box((-1, -1), (1, 1)), progress=True)
    assert "splinecam" in capsys.readouterr().err


@pytest.mark.parametrize("text, expected", [("4GB", 4 * 10**9), ("512MiB", 512 * 2**20), (1000, 1000), ("1.5 kb", 1500)])
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


def test_parse_bytes_rejects_nonsense():
    with pytest.raises(ValueError, match="memory size"):
        parse_bytes("lots")


def test_max_memory_bounds_chunks_without_changing_result():
    model, sl = _model(1), sc.Slice.box((-2, -2), (2, 2))
    small = sc.partition(model, sl, progress=False, max_memory="64KB")
    big = sc.partition(model, sl, progress=False)
    assert len(small) == len(big)
    assert small.verify(500).ok
