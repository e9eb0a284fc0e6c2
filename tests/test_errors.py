"""Bad input raises one clear error (type and key phrase checked), and never a wrong answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import splinecam as sc
from helpers import BOX, random_mlp, run


class Squash(nn.Module):
    def forward(self, x):
        return x / (1 + x.abs())


def test_all_unsupported_modules_named_at_once():
    model = nn.Sequential(
        nn.Linear(2, 4), nn.Tanh(), nn.Sequential(nn.Linear(4, 4), Squash()), nn.Bilinear(4, 4, 2), nn.Linear(2, 1),
    )
    with pytest.raises(sc.UnsupportedModelError) as err:
        run(model)
    msg = str(err.value)
    for name in ("1 (Tanh)", "2.1 (Squash)", "3 (Bilinear)", "not piecewise-linear"):
        assert name in msg, (name, msg)
    assert "Linear (" not in msg  # supported modules are not blamed
    assert isinstance(err.value, ValueError)


class TanhInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        return torch.tanh(self.fc(x))  # the line the error names


def test_an_unsupported_call_is_named_with_its_place_in_the_code():
    """Models are traced without stack traces (fast); a rejected one is traced again with them."""
    with pytest.raises(sc.UnsupportedModelError, match=r"tanh \(tanh\(\)\) at test_errors\.py:\d+: smooth"):
        run(TanhInForward())


@pytest.mark.parametrize("act", [nn.GELU(), nn.SiLU(), nn.Sigmoid(), nn.Softplus(), nn.ELU(), nn.Tanh()])
def test_smooth_activation(act):
    model = nn.Sequential(nn.Linear(2, 3), act, nn.Linear(3, 1))
    with pytest.raises(sc.UnsupportedModelError, match="not piecewise-linear"):
        run(model)


def test_training_mode_batchnorm():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 1))
    model.train()
    with pytest.raises(sc.UnsupportedModelError, match=r"training mode.*eval\(\)"):
        run(model)


def test_batchnorm_without_running_stats():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3, track_running_stats=False), nn.Linear(3, 1)).eval()
    with pytest.raises(sc.UnsupportedModelError, match="running statistics"):
        run(model)


def test_training_mode_dropout_and_batchnorm_named_together():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Dropout(0.5), nn.Linear(3, 1))
    model.train()
    with pytest.raises(sc.UnsupportedModelError) as err:
        run(model)
    msg = str(err.value)
    assert "BatchNorm1d" in msg and "Dropout" in msg and "training mode" in msg


def test_training_mode_dropout_p0_is_fine():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Dropout(0.0), nn.Linear(3, 1))
    model.train()
    assert len(run(model)) >= 1
    assert model.training


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nonfinite_weights(bad):
    model = random_mlp([4], 1, seed=0)
    with torch.no_grad():
        model[2].weight[0, 1] = bad
    with pytest.raises(ValueError, match=r"NaN or inf.*2\.weight"):
        run(model)


def test_nonfinite_buffer():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1)).eval()
    with torch.no_grad():
        model[1].running_var[0] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf.*1\.running_var"):
        run(model)


@pytest.mark.parametrize("make", [
    lambda: sc.Slice(np.array([np.nan, 0]), np.eye(2), [[0, 0], [1, 0], [0, 1]]),
    lambda: sc.Slice(np.zeros(2), np.array([[1, 0], [0, np.inf]]), [[0, 0], [1, 0], [0, 1]]),
    lambda: sc.Slice(np.zeros(2), np.eye(2), [[0, 0], [np.nan, 0], [0, 1]]),
    lambda: sc.Slice.box((0, 0), (np.inf, 1)),
    lambda: sc.Slice.from_points(torch.tensor([0.0, np.nan]), torch.zeros(2), torch.ones(2)),
    lambda: sc.Slice.around(np.array([1.0, np.inf, 0])),
    lambda: BOX.to_input([[np.nan, 0.0]]),
])
def test_nonfinite_slice_inputs(make):
    with pytest.raises(ValueError, match="NaN or inf"):
        make()


@pytest.mark.parametrize("basis", [
    np.array([[1.0, 2.0], [2.0, 4.0]]),
    np.zeros((3, 2)),
    np.array([[1.0, 1.0], [0.0, 1e-14], [0.0, 0.0]]),
])
def test_rank_deficient_basis(basis):
    with pytest.raises(ValueError, match="rank-deficient"):
        sc.Slice(np.zeros(len(basis)), basis, [[0, 0], [1, 0], [0, 1]])


def test_basis_wrong_shape():
    with pytest.raises(ValueError, match=r"basis must have shape \(D, 2\).*D = origin.numel\(\) = 4"):
        sc.Slice(np.zeros((2, 2)), np.eye(3)[:, :2], [[0, 0], [1, 0], [0, 1]])


def test_collinear_points():
    with pytest.raises(ValueError, match="lie on one line"):
        sc.Slice.from_points(np.zeros(3), np.ones(3), 2 * np.ones(3))
    with pytest.raises(ValueError, match="lie on one line"):
        sc.Slice.from_points(np.ones(3), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="different shapes"):
        sc.Slice.from_points(np.zeros(3), np.ones(3), np.ones(4))


@pytest.mark.parametrize("poly", [
    [[0, 0], [2, 0], [1, 0.5], [2, 2], [0, 2]],  # dent
    [[0, 0], [2, 2], [2, 0], [0, 1]],  # bow tie
    [[0, 0], [1, 1], [1, 0], [0, 1]],  # symmetric bow tie: signed area 0, yet not on one line
])
def test_non_convex_polygon(poly):
    with pytest.raises(ValueError, match="not convex"):
        sc.Slice(np.zeros(2), np.eye(2), poly)


@pytest.mark.parametrize("poly", [
    [[0, 0], [1, 1], [2, 2]],
    [[1, 1], [1, 1], [1, 1], [1, 1]],
    [[0, 0], [1, 0], [0, 1e-20]],
])
def test_zero_area_polygon(poly):
    with pytest.raises(ValueError, match="no area"):
        sc.Slice(np.zeros(2), np.eye(2), poly)


@pytest.mark.parametrize("poly", [[[0, 0], [1, 0]], np.zeros((4, 3))])
def test_bad_polygon_shape(poly):
    with pytest.raises(ValueError, match=r"polygon must have shape \(n, 2\)"):
        sc.Slice(np.zeros(2), np.eye(2), poly)


def test_input_dimension_mismatch():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    sl = sc.Slice.around(np.zeros(5))
    with pytest.raises(ValueError, match=r"domain's shape \(5,\)"):
        run(model, sl)
    sl = sc.Slice.around(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        run(nn.Sequential(nn.Linear(4, 1)), sl)



def test_a_batch_of_one_gets_a_hint():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 1))
    x0, x1 = torch.zeros(1, 1, 8, 8), torch.ones(1, 1, 8, 8)
    with pytest.raises(ValueError, match=r"shape \(1, 1, 8, 8\).*without it \(x\[0\]\)") as err:
        sc.partition(model, sc.Path.segment(x0, x1))
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert len(sc.partition(model, sc.Path.segment(x0[0], x1[0])).t) >= 2

def test_region_limit():
    model = random_mlp([16, 16], 1, seed=0)
    full = len(run(model))
    assert full > 10
    with pytest.raises(sc.RegionLimitError, match="max_regions=10"):
        run(model, max_regions=10)
    assert len(run(model, max_regions=full)) == full
    assert issubclass(sc.RegionLimitError, RuntimeError)


def test_not_a_slice_or_not_a_module():
    with pytest.raises(TypeError, match="splinecam.Slice"):
        sc.partition(random_mlp([2], 1, seed=0), np.eye(2))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        sc.partition(lambda x: x, BOX)


def test_bad_memory_size():
    with pytest.raises(ValueError, match="cannot read memory size"):
        run(random_mlp([2], 1, seed=0), max_memory="lots")


def test_verify_loaded_partition_needs_model(tmp_path):
    model = random_mlp([4], 1, seed=0)
    run(model).save(tmp_path / "p.npz")
    back = sc.Partition.load(tmp_path / "p.npz")
    with pytest.raises(ValueError, match="pass the model"):
        back.verify()


def test_errors_leave_model_untouched():
    model = nn.Sequential(nn.Linear(2, 3), nn.GELU(), nn.Linear(3, 1))
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(sc.UnsupportedModelError):
        run(model)
    assert all(torch.equal(a, b) and b.dtype == torch.float32 for a, b in zip(before, model.parameters()))
