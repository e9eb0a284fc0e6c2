"""Exact integrated gradients: the path integral of the gradient from a baseline to an input,
summed over the exact linear pieces of the segment between them (no Riemann steps)."""

from __future__ import annotations

import numpy as np
import torch

from ..partition import partition
from ..paths import Path

__all__ = ["integrated_gradients"]

_PIECES_AT_ONCE = 256  # gradients taken at once (a batch of inputs through the float64 model)


def integrated_gradients(model, x, baseline, target: int | None = None, **partition_options) -> torch.Tensor:
    """Integrated gradients of output ``target`` of ``model`` at ``x`` from ``baseline`` (two
    inputs of one shape, e.g. (3, 32, 32)), exactly:
    ``IG_i = (x_i - x'_i) * sum_p grad_i f_target(piece p) * length_p`` over the linear pieces
    of the segment ``x' -> x`` (:func:`splinecam.partition` on :meth:`Path.segment`, lengths in
    t in [0, 1]), where each piece's gradient is constant; it is taken by autograd in float64
    at the piece's midpoint.  target: default the top class at ``x`` (output 0 for K = 1).
    partition_options: passed to :func:`splinecam.partition` (limits, progress, rtol).

    Returns a float64 tensor shaped like ``x``; completeness, ``ig.sum() == f(x) - f(x')``,
    holds to float64 rounding.  Raises what the partition raises (a limit's error carries no
    attribution: a partial path has no complete integral).
    """
    path = Path.segment(baseline, x)
    part = partition(model, path, **partition_options)
    twin = part.model
    k = part.n_outputs
    if target is None:
        target = 0 if k == 1 else int(np.argmax(part.evaluate([1.0])[0]))
    if not 0 <= int(target) < k:
        raise ValueError(f"target must be an output index in [0, {k}), got {target!r}.")
    first = next(iter(twin.parameters()), None)
    mids = (part.lo + part.hi) / 2
    total = torch.zeros(path.input_shape, dtype=torch.float64)
    for s in range(0, len(mids), _PIECES_AT_ONCE):
        xs = part.to_input(mids[s : s + _PIECES_AT_ONCE])
        if first is not None:
            xs = xs.to(device=first.device, dtype=first.dtype)
        xs.requires_grad_(True)
        out = twin(xs).reshape(len(xs), -1)[:, int(target)]
        (grad,) = torch.autograd.grad(out.sum(), xs)
        weights = torch.as_tensor(part.lengths[s : s + _PIECES_AT_ONCE], dtype=torch.float64)
        total += torch.einsum("p,p...->...", weights, grad.detach().cpu().to(torch.float64))
    delta = torch.as_tensor(path.points[1] - path.points[0], dtype=torch.float64)
    return delta * total
