"""The on-plane tolerance, one rule for cells of every dimension."""

from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["plane_tolerance"]


def plane_tolerance(slopes: Sequence[torch.Tensor], c: torch.Tensor, extent, rtol: float,
                    atol: float = 0.0) -> torch.Tensor:
    """On-plane tolerance of the planes ``sum_i slopes[i] * t_i + c`` (each tensor (...)) over a
    domain of half-sizes ``extent`` (d,) around the origin: ``rtol`` times the size of the
    terms, at least ``atol``.  (No argument is changed.)"""
    size = slopes[0].abs().mul_(extent[0])
    for i in range(1, len(slopes)):
        size = size.add_(slopes[i].abs().mul_(extent[i]))
    return (size + c.abs()).mul_(rtol).add_(atol)
