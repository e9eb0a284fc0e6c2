"""The fast path of :func:`splinecam.partition` for plain MLPs: an ``nn.Sequential`` (nested ones
too) of ``nn.Linear``, ``nn.ReLU``, ``nn.LeakyReLU``, ``nn.Identity`` and eval-mode ``nn.Dropout``
on flat inputs, in float64 on the CPU with numba installed.

Such a model needs no tracing, no float64 copy of the model and no general scheduler: batches of
regions go through the layers depth first, each activation split compiled
(:func:`~splinecam.geometry.split_at_breakpoints`, the same kernel and tolerances as the engine)
and the pieces' states gathered through their piece in one compiled pass.  Memory stays within
``max_memory`` as in the engine, in chunks small enough that their arrays are reused rather than
mapped afresh; every compiled call is bounded and hands back the pieces it has not finished, so
progress, the time limit, the region limit and Ctrl-C are seen between calls, as in the engine.
The float64 copy of the user's model that :meth:`Partition.verify` runs is made from a snapshot
of its state when it is first asked for (see :func:`splinecam.run.trace.frozen`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..geometry import Polygons, compiled, split_at_breakpoints
from ..ops import REGISTRY, ElementwiseOp, LinearOp, leaky_relu_op, relu_op
from .regions import LayerInfo, RegionArrays, join_regions, region_arrays
from .engine import slice_frame
from ..slices import Slice
from .watch import Watch

_PIECE_BYTES = 256  # bytes a piece holds besides its states and code (polygon, indices)
_CHUNK_STATE_BYTES = 16 << 20  # states of one chunk: arrays this size are reused by malloc, not mapped afresh


@dataclass
class Chain:
    """A plain MLP: its leaf modules in call order (a module used twice appears twice) and the op
    of each (None for an identity), with float64 copies of the weights taken when it was read."""

    leaves: list[tuple[str, nn.Module]]
    ops: list[LinearOp | ElementwiseOp | None]

    def layers(self, width: int) -> tuple[dict[int, LayerInfo], int]:
        """The piecewise-linear layers by their index in ``ops``, on inputs (width,), and the
        number of outputs."""
        layers = {}
        for step, ((name, _), op) in enumerate(zip(self.leaves, self.ops)):
            if isinstance(op, LinearOp):
                width = op.weight.shape[0]
            elif op is not None:
                layers[step] = LayerInfo(name, width, width * op.breakpoints.numel())
        return layers, width


_SHIPPED = {kind: REGISTRY.for_type(kind) for kind in (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Identity, nn.Dropout)}
_RELU = relu_op()
_leaky_relu = functools.lru_cache(maxsize=64)(leaky_relu_op)  # ops are not changed by a run


def _leaves(module: nn.Module, prefix: str = ""):
    """(qualified name, module) of the leaves of nested ``nn.Sequential`` containers, in the order
    ``forward`` calls them, repeats included (``named_children`` lists a shared module once)."""
    if type(module) is nn.Sequential:
        for name, child in module._modules.items():  # what Sequential.forward iterates
            yield from _leaves(child, f"{prefix}{name}" if not prefix else f"{prefix}.{name}")
    else:
        yield prefix, module


def read_chain(model, sl: Slice) -> Chain | None:
    """The chain of ``model`` on the slice's inputs, or None if it is not a plain MLP (then the
    engine runs it, and reports whatever is wrong with it)."""
    if type(model) is not nn.Sequential or len(sl.input_shape) != 1:
        return None
    width = sl.input_shape[0]
    leaves, ops = list(_leaves(model)), []
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
    return Chain(leaves, ops)


ENABLED = True  # False: every run takes the engine (the tests use it to run both executors)


def chain_applies(dtype, device) -> bool:
    """Whether runs in ``dtype`` on ``device`` can take the fast path."""
    return ENABLED and compiled.AVAILABLE and dtype == torch.float64 and torch.device(device).type == "cpu"


@dataclass
class _Batch:
    """Regions that have gone through the ops before ``step``: polygons (R,), the state
    (R, 3, width) the op ``step`` takes, and per split layer so far the packed codes (R, bytes)."""

    polys: Polygons
    state: torch.Tensor
    codes: list[np.ndarray]
    step: int


def _pieces_batch(pieces: Polygons, sel: torch.Tensor | None, op: ElementwiseOp, state: torch.Tensor,
                  parent: torch.Tensor, code: torch.Tensor, codes: list[np.ndarray], step: int) -> _Batch:
    """The batch of the pieces ``sel`` (None: all) of a split at ``step - 1``: regions' states
    (R, 3, U) and codes, the pieces' regions ``parent`` (n,) and codes (n, U, k)."""
    if sel is not None:
        pieces, parent, code = pieces.select(sel)[0], parent[sel], code[sel]
    index = parent.numpy()
    packed = np.packbits(code.reshape(len(index), -1).numpy(), axis=1)
    return _Batch(pieces, op.push_pieces(state, parent, code), [c[index] for c in codes] + [packed], step)


class ChainRun:
    """One run of the fast path over a slice.  :meth:`run` gives the regions.  Its ``watch``
    shows progress and raises at its limits, after which :meth:`finished_regions` holds the
    regions finished so far.

    Depth first and bounded as the engine is: one call of a split holds at most ``budget`` bytes
    of piece records and does a bounded amount of work; the pieces it has not finished go back
    on the stack (under the finished ones) to be split again.  The pieces go on in chunks whose
    states fit the budget (and ``chunk_size``), each run to the end before the next."""

    def __init__(self, chain: Chain, sl: Slice, rtol: float, budget: int, chunk_size: int | None):
        self.chain, self.rtol, self.budget = chain, rtol, budget
        self.center, self.root, self.extent, self.state = slice_frame(sl, torch.float64, "cpu")
        by_step, self.outputs = chain.layers(sl.input_shape[0])
        self.layers = list(by_step.values())
        widest = max([op.weight.shape[0] for op in chain.ops if isinstance(op, LinearOp)] + [sl.input_shape[0]])
        self.plan = {}  # step of a split -> (layer index, most pieces of one chunk)
        for index, (step, layer) in enumerate(by_step.items()):
            chunk = min(budget // (layer.bits + 48 * widest + _PIECE_BYTES), _CHUNK_STATE_BYTES // (24 * widest),
                        chunk_size or budget)
            self.plan[step] = (index, max(1, chunk))
        self.finished: list[RegionArrays] = []

    def finished_regions(self) -> RegionArrays:
        """The regions finished so far (all of them after :meth:`run`), in one array set."""
        self.finished = [join_regions(self.finished, self.outputs, self.layers)]
        return self.finished[0]

    def run(self, watch: Watch) -> RegionArrays:
        """The regions (see the class), watched by ``watch``."""
        ops = self.chain.ops
        stack = [(1, functools.partial(_Batch, Polygons.single(self.root), self.state, [], 0))]  # (regions, make)
        watch.start()
        watch.pending = 1
        try:
            while stack:
                n, make = stack.pop()
                watch.pending -= n
                watch.check_time()
                batch = make()
                polys, state, codes = batch.polys, batch.state, batch.codes
                for step in range(batch.step, len(ops)):
                    op = ops[step]
                    if op is None:
                        continue
                    if isinstance(op, LinearOp):
                        state = op.push(state)
                        continue
                    layer, chunk = self.plan[step]
                    pieces, parent, code, rest, rest_parent = split_at_breakpoints(
                        polys, state, op.breakpoints, self.extent, self.rtol, layer, self.budget)
                    if len(rest):  # split again after the finished pieces
                        index = rest_parent.numpy()
                        stack.append((len(rest), functools.partial(_Batch, rest, state[rest_parent],
                                                                   [c[index] for c in codes], step)))
                    watch.pending += len(rest)
                    watch.check(self.layers[layer].name, len(pieces))
                    chunks = torch.arange(len(pieces)).split(chunk) if len(pieces) > chunk else [None]
                    for sel in reversed(chunks):
                        n = len(pieces) if sel is None else len(sel)
                        stack.append((n, functools.partial(_pieces_batch, pieces, sel, op, state, parent, code, codes,
                                                           step + 1)))
                    watch.pending += len(pieces)
                    break
                else:
                    packed = np.concatenate(codes, axis=1) if codes else np.zeros((len(polys), 0), np.uint8)
                    self.finished.append(region_arrays(polys, state, self.center, torch.from_numpy(packed)))
                    watch.finished(polys)
        finally:
            watch.close()
        return self.finished_regions()
