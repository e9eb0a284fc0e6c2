"""``sc.nn``: the waves and encodings as torch modules (values against independent references,
shapes, order, autograd, training, dtypes, saving), and what ``sc.partition`` makes of them."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import signal
from torch import nn

import splinecam as sc
from helpers import run


def test_triangle_wave_has_the_zeros_and_peaks_of_sin():
    tri = sc.nn.TriangleWave()
    z = torch.tensor([0.0, math.pi / 2, math.pi, 3 * math.pi / 2, 2 * math.pi, -math.pi / 2, 100 * math.pi], dtype=torch.float64)
    np.testing.assert_allclose(tri(z).numpy(), [0, 1, 0, -1, 0, -1, 0], atol=1e-12)
    z = torch.linspace(-20, 20, 2001, dtype=torch.float64)
    # |tri| <= 1, the same sign as sin, and linear between the peaks: 2/pi * asin(sin z)
    np.testing.assert_allclose(tri(z).numpy(), 2 / math.pi * np.arcsin(np.sin(z.numpy())), atol=1e-9)


@pytest.mark.parametrize("width", [0.1, 0.5, 0.93])
def test_sawtooth_is_scipys(width):
    z = torch.linspace(-30, 30, 3001, dtype=torch.float64)
    got = sc.nn.Sawtooth(width, period=2.5)(z).numpy()
    np.testing.assert_allclose(got, signal.sawtooth(2 * np.pi * z.numpy() / 2.5, width), atol=1e-9)


def test_positional_encoding_with_sin_is_nerfs():
    x = torch.rand(7, 3, dtype=torch.float64) * 2 - 1
    enc = sc.nn.PositionalEncoding(3, 4, kind="sin").double()
    ref = [x] + [f(2.0**k * math.pi * x) for k in range(4) for f in (torch.sin, torch.cos)]
    assert enc.out_features == 3 + 2 * 4 * 3
    torch.testing.assert_close(enc(x), torch.cat(ref, -1), rtol=0, atol=1e-6)


def test_triangle_encoding_is_the_same_layout_with_triangles():
    x = torch.rand(5, 2, dtype=torch.float64)
    freqs = [1.0, 3.0]
    enc = sc.nn.PositionalEncoding(2, kind="triangle", frequencies=freqs, include_input=False).double()
    tri = sc.nn.TriangleWave().double()
    ref = [tri(w * x + phase) for w in freqs for phase in (0.0, math.pi / 2)]
    torch.testing.assert_close(enc(x), torch.cat(ref, -1), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["sin", "triangle"])
def test_fourier_features(kind):
    g = torch.Generator().manual_seed(0)
    B = torch.randn(6, 2, generator=g) * 3
    x = torch.rand(4, 10, 2, dtype=torch.float64)  # any leading dims
    enc = sc.nn.FourierFeatures(B, kind=kind, include_input=True).double()
    f = torch.sin if kind == "sin" else sc.nn.TriangleWave().double()
    z = 2 * math.pi * x @ B.double().T
    torch.testing.assert_close(enc(x), torch.cat([x, f(z), f(z + math.pi / 2)], -1), rtol=0, atol=1e-5)
    assert enc.out_features == 2 + 12


def test_a_wave_of_another_period_keeps_the_meaning_of_frequencies():
    """Frequencies are angles: a sawtooth of period 3 is evaluated at ``3 / (2 pi)`` times them."""
    saw = sc.nn.Sawtooth(0.3, period=3.0)
    enc = sc.nn.PositionalEncoding(1, kind=saw, frequencies=[math.pi], include_input=False).double()
    x = torch.linspace(-1, 1, 9, dtype=torch.float64)[:, None]
    torch.testing.assert_close(enc(x), torch.cat([saw(x * 1.5), saw(x * 1.5 + 0.75)], -1).double())


def test_the_waves_are_differentiable():
    z = (torch.linspace(-7, 7, 57, dtype=torch.float64) + 0.0123).requires_grad_()  # no breakpoint within 1e-3
    for wave in (sc.nn.TriangleWave(), sc.nn.Sawtooth(0.8, 1.3), sc.nn.PeriodicPWL([0.1, 0.4, 0.5], [1, -2, 0.5], 1.1)):
        assert torch.autograd.gradcheck(wave.double(), (z,))
    enc = sc.nn.FourierFeatures(torch.randn(3, 2), kind="triangle").double()
    x = (torch.rand(4, 2, dtype=torch.float64) * 0.9 + 0.013).requires_grad_()
    assert torch.autograd.gradcheck(enc, (x,))


def test_a_triangle_inr_trains():
    torch.manual_seed(0)
    enc = sc.nn.PositionalEncoding(2, 3, kind="triangle")
    model = nn.Sequential(enc, nn.Linear(enc.out_features, 16), nn.ReLU(), nn.Linear(16, 1))
    x = torch.rand(256, 2) * 2 - 1
    y = torch.sin(3 * x[:, :1]) * torch.cos(2 * x[:, 1:])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    part = run(model.eval(), sc.Slice.box((-1, -1), (1, 1)))
    assert part.verify(n_points=300).ok


def test_state_dict_and_dtypes():
    enc = sc.nn.FourierFeatures(torch.randn(4, 3), kind="triangle")
    back = sc.nn.FourierFeatures(torch.zeros(4, 3), kind="triangle")
    back.load_state_dict(enc.state_dict())
    x = torch.rand(2, 3)
    torch.testing.assert_close(back(x), enc(x))
    assert enc.half().float()(x).dtype == torch.float32
    assert "period" in repr(sc.nn.TriangleWave()) and "out_features=8" in repr(enc)


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="not continuous"):
        sc.nn.Sawtooth(1.0)
    with pytest.raises(ValueError, match="kind must be"):
        sc.nn.PositionalEncoding(2, kind="square")
    with pytest.raises(ValueError, match=r"B must be \(m, d\)"):
        sc.nn.FourierFeatures(torch.randn(5))
    with pytest.raises(ValueError, match="increase strictly"):
        sc.nn.PeriodicPWL([1.0, 0.0], [0.0, 1.0], 3.0)


@pytest.mark.parametrize("make", [
    lambda: sc.nn.PositionalEncoding(2, 2, kind="sin"),
    lambda: sc.nn.FourierFeatures(torch.randn(3, 2), kind="sin"),
])
def test_a_sine_encoding_not_at_the_input_gets_the_clear_error(make):
    """sin is not piecewise-linear: at the input it is certified (tests/run/test_curved.py);
    anywhere else the error names it."""
    enc = make()
    model = nn.Sequential(nn.Linear(2, 2), enc, nn.Linear(enc.out_features, 4), nn.ReLU(), nn.Linear(4, 1))
    with pytest.raises(sc.UnsupportedModelError, match=r"sin.*not piecewise-linear"):
        run(model, sc.Slice.box((-1, -1), (1, 1)))


@pytest.mark.slow
def test_the_inr_example_runs(tmp_path):
    """examples/inr_encodings.py at a tiny size: three fits, the exact partitions of two, a figure."""
    pytest.importorskip("skimage")
    script = Path(__file__).resolve().parents[1] / "examples" / "inr_encodings.py"
    out = tmp_path / "inr.png"
    res = subprocess.run([sys.executable, str(script), "--size", "12", "--steps", "20", "--width", "8",
                          "--frequencies", "2", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("raw coordinates") and "regions" in lines[0]
    assert lines[1].startswith("triangle encoding") and "regions" in lines[1]
    assert out.stat().st_size > 10_000
