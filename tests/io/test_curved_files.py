"""Curved partition files (splinecam.curved/1): a saved CurvedPartition loads back with its
pieces, patterns, regions, certificate and network (it evaluates exactly and certifies level
sets without the model), written atomically, and every array is checked on load."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from helpers import model_out, sine_mlp

import splinecam as sc
from splinecam.errors import InvalidPartitionFile, TimeLimitError

SLICE = sc.Slice.box((-1.2, -0.9), (1.1, 1.0))


def centred(model):
    """``model`` with its last bias moved so that the decision boundary crosses the slice."""
    uv = np.random.default_rng(0).uniform((-1.2, -0.9), (1.1, 1.0), (300, 2))
    with torch.no_grad():
        model[-1].bias -= torch.as_tensor(np.median(model_out(model, SLICE, uv), 0))
    return model


def refuse(*args, **kwargs):
    raise AssertionError("loading ran pickle")


@pytest.fixture(scope="module")
def one_output():
    model = centred(sine_mlp([4, 3], 1, 7))
    return model, sc.partition(model, SLICE, progress=False, tol=1e-4)


def test_a_curved_partition_loads_back_whole(one_output, tmp_path, monkeypatch):
    model, part = one_output
    path = tmp_path / "curved.npz"
    part.save(path)

    for name in ("load", "loads"):  # loading runs no code
        monkeypatch.setattr(pickle, name, refuse)
    back = sc.CurvedPartition.load(path)
    monkeypatch.undo()
    assert back.curved and back.tolerance == part.tolerance and back.complete
    assert back.n_regions == part.n_regions > 1 and len(back) == len(part)
    for name in ("vertices", "offsets", "edge_units", "bits", "side", "certified", "region", "uncertified", "pending",
                 "reasons"):
        assert np.array_equal(getattr(back.pieces, name), getattr(part.pieces, name)), name
    assert np.array_equal(back.affine, part.affine) and np.array_equal(back.codes, part.codes)
    assert [vars(x) for x in back.layers] == [vars(x) for x in part.layers]
    uv = np.random.default_rng(1).uniform((-1.2, -0.9), (1.1, 1.0), (200, 2))
    assert np.array_equal(back.evaluate(uv), part.evaluate(uv))
    assert np.array_equal(back.decision_boundary().segments, part.decision_boundary().segments)
    with pytest.raises(ValueError, match="no model"):
        back.verify()
    assert back.verify(model=model, n_points=300).ok
    # the network came back too: a level set is certified again without the model, identically
    assert np.array_equal(back.level_set(0.2).segments, part.level_set(0.2).segments)


def test_two_outputs_and_a_partial_run_load_back(tmp_path):
    part = sc.partition(centred(sine_mlp([3], 2, 3)), SLICE, progress=False, tol=1e-4)
    part.save(tmp_path / "two")  # .npz is added, as numpy does
    back = sc.CurvedPartition.load(tmp_path / "two.npz")
    assert np.array_equal(back.side, part.side) and back.net.decision[0].tolist() == [-1.0, 1.0]
    assert np.array_equal(back.class_cells().label, part.class_cells().label)
    with pytest.raises(TimeLimitError) as err:
        sc.partition(sine_mlp([8, 8], 1, 1), SLICE, progress=False, timeout=0.05)
    partial = err.value.partial
    partial.save(tmp_path / "partial.npz")
    back = sc.CurvedPartition.load(tmp_path / "partial.npz")
    assert not back.complete and np.array_equal(back.pieces.pending, partial.pieces.pending)
    assert len(back.pieces.pending) > 0


def test_save_is_atomic(one_output, tmp_path, monkeypatch):
    _, part = one_output
    path = tmp_path / "curved.npz"

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(OSError, match="disk full"):
        part.save(path)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary
    with pytest.raises(FileNotFoundError, match="does not exist"):
        part.save(tmp_path / "no" / "such.npz")


def rewritten(path, tmp_path, **changes):
    """A copy of the file at ``path`` with some arrays (or meta entries, under meta=) replaced."""
    import json

    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    meta.update(changes.pop("meta", {}))
    arrays.update(changes, meta=np.array(json.dumps(meta)))
    out = tmp_path / "changed.npz"
    np.savez(out, **arrays)
    return out


@pytest.mark.parametrize("change, message", [
    (lambda a: dict(bits=a["bits"][:, 1:]), "'bits' has shape"),
    (lambda a: dict(side=a["side"][:-1]), "'side' has shape"),
    (lambda a: dict(region=a["region"] + 1), "'region' does not number"),
    (lambda a: dict(labels=np.where(a["labels"] == 0, 9, a["labels"])), "'labels' name units"),
    (lambda a: dict(verts=np.where(a["verts"] > 0.5, np.nan, a["verts"])), "NaN"),
    (lambda a: dict(offsets=a["offsets"][:-1]), "'offsets' do not split"),
    (lambda a: dict(weights=a["weights"][:-1]), "weights"),
    (lambda a: dict(biases=np.full_like(a["biases"], np.inf)), "'biases' is not finite"),
    (lambda a: dict(uncertified=np.array([[0.0, 0.0, -1.0, 1.0]])), "'uncertified' holds empty boxes"),
    (lambda a: dict(decision=np.zeros(3)), "decision row"),
    (lambda a: dict(reasons=np.zeros(2, np.int64)), "'reasons' has shape"),
    (lambda a: dict(meta={"tolerance": -1.0}), "'tolerance'"),
    (lambda a: dict(meta={"format": "splinecam.partition/1"}), "expected 'splinecam.curved/1'"),
])
def test_every_array_is_checked_on_load(one_output, tmp_path, change, message):
    _, part = one_output
    path = tmp_path / "curved.npz"
    part.save(path)
    with np.load(path) as f:
        bad = rewritten(path, tmp_path, **change({k: f[k] for k in f.files}))
    with pytest.raises(InvalidPartitionFile, match="not a valid splinecam") as err:
        sc.CurvedPartition.load(bad)
    assert message in str(err.value)


def test_the_two_kinds_of_file_are_told_apart(one_output, tmp_path):
    _, part = one_output
    part.save(tmp_path / "curved.npz")
    with pytest.raises(InvalidPartitionFile, match="splinecam.curved/1"):
        sc.Partition.load(tmp_path / "curved.npz")
    sc.partition(torch.nn.Linear(2, 1), sc.Slice.box((-1, -1), (1, 1)), progress=False).save(tmp_path / "flat.npz")
    with pytest.raises(InvalidPartitionFile, match="splinecam.partition/1"):
        sc.CurvedPartition.load(tmp_path / "flat.npz")
