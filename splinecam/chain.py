"""The fast path of :func:`splinecam.partition` for plain MLPs: an ``nn.Sequential`` (nested ones
too) of ``nn.Linear``, ``nn.ReLU``, ``nn.LeakyReLU``, ``nn.Identity`` and eval-mode ``nn.Dropout``
on flat inputs, in float64 on the CPU with numba installed.

Such a model needs no tracing, no float64 copy of the model and no scheduling: the whole slice
goes through the layers as one batch, each activation split compiled
(:func:`~splinecam.geometry.split_at_breakpoints`, the same kernel and tolerances as the engine),
so a small partition costs little more than its arithmetic.  The run stays bounded: past
``max_memory`` (or ``chunk_size``, or ``max_regions``) pieces at a layer, or past the time
limit, :func:`partition_chain` hands back None and the engine does the run instead, with its
chunking, progress and limits.  The float64 copy of the model that :meth:`Partition.verify`
needs is made from a snapshot of the weights when it is first asked for.
"""

from __future__ import annotations

import copy
import functools
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .geometry import Polygons, compiled, split_at_breakpoints
from .ops import REGISTRY, ElementwiseOp, LinearOp, leaky_relu_op, relu_op
from .regions import LayerInfo, RegionArrays, region_arrays
from .engine import slice_frame
from .slices import Slice

_PIECE_BYTES = 256  # bytes a piece holds besides its states and code (polygon, indices)


@dataclass
class Chain:
    """A plain MLP: its leaf modules in order, the op of each (None for an identity) and a
    float64 snapshot of their parameters, taken when the chain was read."""

    leaves: list[tuple[str, nn.Module]]
    ops: list[LinearOp | ElementwiseOp | None]
    snapshot: list[list[torch.Tensor]]

    def twin(self) -> nn.Module:
        """A float64 ``nn.Sequential`` of copies of the leaves holding the snapshot weights."""
        twin = nn.Sequential(*copy.deepcopy([m for _, m in self.leaves])).to(torch.float64)
        with torch.no_grad():
            for module, params in zip(twin, self.snapshot):
                for p, value in zip(module.parameters(), params):
                    p.copy_(value)
        return twin


_SHIPPED = {kind: REGISTRY.for_type(kind) for kind in (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Identity, nn.Dropout)}
_RELU = relu_op()
_leaky_relu = functools.lru_cache(maxsize=64)(leaky_relu_op)  # ops are not changed by a run


def _leaves(module: nn.Module, prefix: str = ""):
    """(qualified name, module) of the leaves of nested ``nn.Sequential`` containers."""
    if type(module) is nn.Sequential:
        for name, child in module.named_children():
            yield from _leaves(child, f"{prefix}{name}" if not prefix else f"{prefix}.{name}")
    else:
        yield prefix, module


def read_chain(model, sl: Slice) -> Chain | None:
    """The chain of ``model`` on the slice's inputs, or None if it is not a plain MLP (then the
    engine runs it, and reports whatever is wrong with it)."""
    if type(model) is not nn.Sequential or len(sl.input_shape) != 1:
        return None
    width = sl.input_shape[0]
    leaves, ops, snapshot = list(_leaves(model)), [], []
    for _, m in leaves:
        kind = type(m)
        if kind not in _SHIPPED or REGISTRY.for_type(kind) is not _SHIPPED[kind]:  # a user's op takes the engine
            return None
        own = ([m.weight] + ([m.bias] if m.bias is not None else [])) if kind is nn.Linear else []  # others have none
        params = [p.detach().to("cpu", torch.float64, copy=True) for p in own]
        if not np.isfinite(sum(float(p.numpy().sum()) for p in params)):  # NaN or inf (or a sum that overflows)
            return None
        if kind is nn.Linear:
            if m.in_features != width:
                return None
            op, width = LinearOp(params[0], params[1] if m.bias is not None else None), m.out_features
        elif kind is nn.ReLU:
            op = _RELU
        elif kind is nn.LeakyReLU:
            op = _leaky_relu(float(m.negative_slope))
        elif kind is nn.Dropout and m.training and m.p > 0:
            return None  # random: the engine says so
        else:
            op = None  # Identity, Dropout in eval mode
        ops.append(op)
        snapshot.append(params)
    return Chain(leaves, ops, snapshot)


def chain_applies(dtype, device) -> bool:
    """Whether runs in ``dtype`` on ``device`` can take the fast path."""
    return compiled.AVAILABLE and dtype == torch.float64 and torch.device(device).type == "cpu"


def partition_chain(chain: Chain, sl: Slice, rtol: float, budget: int, max_regions: int, chunk_size: int | None,
                    deadline: float) -> tuple[RegionArrays, list[LayerInfo]] | None:
    """The regions of the chain on the slice and its layers, or None where a bound is reached
    (more pieces at a layer than ``budget`` bytes, ``chunk_size`` or ``max_regions`` allow, or
    ``time.perf_counter()`` past ``deadline``)."""
    center, root, extent, state = slice_frame(sl, torch.float64, "cpu")
    polys = Polygons.single(root)
    layers: list[LayerInfo] = []
    codes: list[torch.Tensor] = []  # per layer: (pieces of that layer, bits) bool
    parents: list[torch.Tensor] = []  # per layer: the region (of the layer before) of each piece
    widths = [op.weight.shape[0] for op in chain.ops if isinstance(op, LinearOp)]
    widest = max(widths + [state.shape[2]])
    splits_left = sum(isinstance(op, ElementwiseOp) for op in chain.ops)
    for (name, _), op in zip(chain.leaves, chain.ops):
        if op is None:
            continue
        if isinstance(op, LinearOp):
            state = op.push(state)
            continue
        units = state.shape[2]
        bits = units * op.breakpoints.numel()
        max_pieces = budget // (bits + 48 * widest + _PIECE_BYTES)
        if chunk_size is not None:
            max_pieces = min(max_pieces, chunk_size)
        max_pieces = min(max_pieces, max_regions)
        regions = len(polys)
        out = split_at_breakpoints(polys, state, op.breakpoints, extent, rtol, len(layers), max_pieces=max_pieces)
        if out is None or time.perf_counter() > deadline:
            return None
        polys, parent, code = out
        splits_left -= 1
        # hand over early when the next split would most likely pass the bound at the same
        # growth: the engine then starts over from less work thrown away (from one region,
        # the growth says nothing: that is the arrangement of the first layer's lines)
        if splits_left and regions > 1 and len(polys) ** 2 > max_pieces * regions:
            return None
        state = op.push_pieces(state, parent, code)
        layers.append(LayerInfo(name, units, bits))
        codes.append(code.reshape(len(parent), bits))
        parents.append(parent)
    packed = []
    region = np.arange(len(polys))
    for code, parent in zip(reversed(codes), reversed(parents)):  # each layer's code of every final region
        packed.append(np.packbits(code.numpy(), axis=1)[region])
        region = parent.numpy()[region]
    packed = np.concatenate(packed[::-1], axis=1) if packed else np.zeros((len(polys), 0), np.uint8)
    return region_arrays(polys, state, center, torch.from_numpy(packed)), layers
