"""Periodic input encodings for coordinate networks (implicit neural representations), as torch
modules to train with (``sc.nn``).

- :class:`PeriodicPWL`, :class:`TriangleWave`, :class:`Sawtooth`: periodic continuous
  piecewise-linear functions, elementwise.  A model that uses them is piecewise-linear, so
  :func:`splinecam.partition` computes its regions exactly (one op, :class:`~splinecam.ops.periodic.PeriodicOp`).
- :class:`Sine`: ``sin``, elementwise (smooth: no exact partition exists).
- :class:`PositionalEncoding` (NeRF's) and :class:`FourierFeatures` (random Fourier features):
  ``[f(w x), f(w x + quarter period)]`` for a wave ``f`` (``kind="triangle"``, ``"sin"``, or any
  wave module above), the analogue of ``[sin(w x), cos(w x)]``: "the same INR with a piecewise-linear
  encoding" is one argument away.

Every module takes inputs of any shape (..., d) and is differentiable (torch autograd).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .ops import register_op
from .ops.periodic import PeriodicOp, check_period, periodic_pwl

__all__ = ["FourierFeatures", "PeriodicEncoding", "PeriodicPWL", "PositionalEncoding", "Sawtooth", "Sine",
           "TriangleWave"]

TWO_PI = 2 * math.pi


class PeriodicPWL(nn.Module):
    """A periodic continuous piecewise-linear function, elementwise: (...) -> (...).

    knots (k,) increasing within one period, values (k,) there; between consecutive knots the
    function is linear, and after the last knot it goes back to ``values[0]`` at ``knots[0] +
    period``, so it is continuous.  ``sc.partition`` splits regions at every breakpoint exactly.
    """

    def __init__(self, knots, values, period: float):
        super().__init__()
        knots, values, self.period = check_period(knots, values, period)
        self.register_buffer("knots", knots)
        self.register_buffer("values", values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return periodic_pwl(x, self.knots, self.values, self.period)

    def extra_repr(self) -> str:
        return f"knots={self.knots.tolist()}, values={self.values.tolist()}, period={self.period}"


class TriangleWave(PeriodicPWL):
    """The triangle wave with sin's period, peaks and zeros: 0 at 0, 1 at ``period / 4``, 0 at
    ``period / 2``, -1 at ``3 * period / 4`` (default period 2 pi): the piecewise-linear analogue
    of ``sin``.  (...) -> (...)."""

    def __init__(self, period: float = TWO_PI):
        super().__init__([period / 4, 3 * period / 4], [1.0, -1.0], period)


class Sawtooth(PeriodicPWL):
    """``scipy.signal.sawtooth(2 pi z / period, width)``: rises from -1 at 0 to 1 at ``width *
    period``, then falls back to -1 at ``period`` (default period 2 pi).  ``0 < width < 1``: the
    ramp of width 1 (or 0) jumps, so it is not continuous and no exact partition holds it.
    ``width=0.5`` is a triangle wave (shifted).  (...) -> (...)."""

    def __init__(self, width: float = 0.9, period: float = TWO_PI):
        if not 0 < width < 1:
            raise ValueError(f"Sawtooth needs 0 < width < 1 (got {width}): a ramp of width 0 or 1 jumps "
                             "back, so it is not continuous; use e.g. width=0.99 for a steep fall.")
        super().__init__([0.0, width * period], [-1.0, 1.0], period)


class Sine(nn.Module):
    """``sin``, elementwise: (...) -> (...).  Smooth, so ``sc.partition`` cannot split at it exactly."""

    period = TWO_PI

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


def _wave(kind) -> nn.Module:
    if isinstance(kind, nn.Module) and isinstance(getattr(kind, "period", None), float):
        return kind
    if kind == "triangle":
        return TriangleWave()
    if kind == "sin":
        return Sine()
    raise ValueError(f"kind must be 'triangle', 'sin' or a wave module (sc.nn.PeriodicPWL, TriangleWave, Sawtooth, "
                     f"Sine), got {kind!r}.")


class PeriodicEncoding(nn.Module):
    """``wave(x @ weight.T + phase)``, with ``x`` in front if ``include_input``: (..., d) -> (...,
    out_features).

    frequencies (m, d) and phases (m,) are angles (as for ``sin``); the buffers ``weight`` (m, d)
    and ``phase`` (m,) hold them in the wave's own units (times ``wave.period / (2 pi)``), so the
    wave's argument is ``F.linear(x, weight, phase)``.  Fixed (buffers, not parameters).
    """

    def __init__(self, frequencies, phases, kind="triangle", include_input: bool = False):
        super().__init__()
        frequencies = torch.as_tensor(frequencies, dtype=torch.float32)
        phases = torch.as_tensor(phases, dtype=torch.float32)
        if frequencies.dim() != 2 or phases.shape != frequencies.shape[:1]:
            raise ValueError(f"frequencies must be (m, d) and phases (m,), got {tuple(frequencies.shape)} and "
                             f"{tuple(phases.shape)}.")
        self.wave = _wave(kind)
        scale = self.wave.period / TWO_PI
        self.register_buffer("weight", frequencies * scale)
        self.register_buffer("phase", phases * scale)
        self.include_input = include_input
        self.in_features = frequencies.shape[1]
        self.out_features = frequencies.shape[0] + (self.in_features if include_input else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.wave(F.linear(x, self.weight, self.phase))
        return torch.cat([x, y], -1) if self.include_input else y

    def sin_phases(self) -> tuple[torch.Tensor, torch.Tensor, int] | None:
        """For a sine encoding (what ``sc.partition`` certifies, see :mod:`splinecam.run.curved`):
        (F (n, d), phi (n,), k) with ``forward(x)`` the k features ``(x @ F.T + phi)[:k]`` (the raw
        input, if included) then ``sin(x @ F.T + phi)[k:]``; None for other waves."""
        if not isinstance(self.wave, Sine):
            return None
        k = self.in_features if self.include_input else 0
        eye = torch.eye(self.in_features, dtype=self.weight.dtype)[:k]
        return torch.cat([eye, self.weight]), torch.cat([self.phase.new_zeros(k), self.phase]), k

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, include_input={self.include_input}"


def _quadrature(frequencies: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (2m, d) ``[w; w]`` and phases ``[0] * m + [pi / 2] * m`` of frequencies (m, d): each
    wave and its quarter-period shift (sin and cos)."""
    m = len(frequencies)
    return torch.cat([frequencies, frequencies]), torch.cat([torch.zeros(m), torch.full((m,), math.pi / 2)])


class PositionalEncoding(PeriodicEncoding):
    """NeRF's positional encoding with a chosen wave: for each frequency ``w`` (default ``2**k * pi``,
    k < ``n_frequencies``) and each input coordinate ``x_i``, ``f(w x_i)`` and ``f(w x_i + quarter
    period)`` (``sin`` and ``cos`` for ``kind="sin"``), the raw input first if ``include_input``.

    (..., d) -> (..., d * include_input + 2 * n_frequencies * d), ordered per frequency:
    ``[x, f(w_0 x), f(w_0 x + q), f(w_1 x), ...]``.
    """

    def __init__(self, in_features: int, n_frequencies: int = 6, kind="triangle", frequencies=None,
                 include_input: bool = True):
        if frequencies is None:
            frequencies = [2.0 ** k * math.pi for k in range(n_frequencies)]
        eye = torch.eye(in_features)
        rows, phases = zip(*[_quadrature(w * eye) for w in torch.as_tensor(frequencies, dtype=torch.float32).reshape(-1)])
        super().__init__(torch.cat(rows), torch.cat(phases), kind, include_input)


class FourierFeatures(PeriodicEncoding):
    """Random Fourier features with a chosen wave: ``[f(2 pi B x), f(2 pi B x + quarter period)]``
    (``[sin(2 pi B x), cos(2 pi B x)]`` for ``kind="sin"``), the raw input first if ``include_input``.

    B: (m, d), e.g. ``sigma * torch.randn(m, d)``.  (..., d) -> (..., d * include_input + 2m).
    """

    def __init__(self, B, kind="triangle", include_input: bool = False):
        B = torch.as_tensor(B, dtype=torch.float32)
        if B.dim() != 2:
            raise ValueError(f"B must be (m, d), got shape {tuple(B.shape)}.")
        super().__init__(*_quadrature(TWO_PI * B), kind, include_input)


register_op(PeriodicPWL, lambda m: PeriodicOp(m.knots, m.values, m.period))
