"""The fast path of :func:`splinecam.partition` for plain MLPs: an ``nn.Sequential`` (nested ones
too) of ``nn.Linear``, ``nn.ReLU``, ``nn.LeakyReLU``, ``nn.Identity`` and eval-mode ``nn.Dropout``
on flat inputs, in float64 on the CPU with numba installed.

Such a model needs no tracing and no float64 copy of the model: its modules are read in call
order into the same :class:`~splinecam.run.trace.Graph` of ops the tracer makes (a
:class:`~splinecam.ops.LinearOp` or an :class:`~splinecam.ops.ElementwiseOp` per node), and
:class:`ChainRun` runs it on the same plan and work stack as the engine: each activation split
compiled (:func:`~splinecam.geometry.split_at_breakpoints`) and the pieces' states gathered
through their piece in one compiled pass (``Split.gather``).  So bounds, limits, progress and
pruning (boundary first) are the engine's.  The float64 copy of the user's model that
:meth:`Partition.verify` runs is made from a snapshot of its state when it is first asked for
(see :func:`splinecam.run.trace.frozen`).
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..geometry import compiled
from ..ops import REGISTRY, ElementwiseOp, LinearOp, leaky_relu_op, relu_op
from ..slices import Slice
from .engine import Engine
from .trace import Graph, Node

__all__ = ["Chain", "ChainRun", "cached_chain", "chain_applies", "leaf_modules", "read_chain"]


@dataclass
class Chain:
    """A plain MLP: its leaf modules in call order (a module used twice appears twice) and the op
    of each (None for an identity), with float64 copies of the weights taken when it was read;
    ``state``: those copies by the names ``named_parameters`` gives them (the model has no other
    parameters or buffers), for :func:`~splinecam.run.trace.frozen`."""

    leaves: list[tuple[str, nn.Module]]
    ops: list[LinearOp | ElementwiseOp | None]
    state: dict[str, torch.Tensor]
    derived: dict = field(default_factory=dict)  # what executors make of it once (e.g. a path kernel's arrays)

    def graph(self, width: int) -> tuple[Graph, list[tuple[int, ...]]]:
        """The graph of the ops (each reads the value before it; the identities left out, the
        nodes named by their leaves) and the shape of every value, on inputs (width,)."""
        nodes, shapes = [], [(width,)]
        for (name, module), op in zip(self.leaves, self.ops):
            if op is None:
                continue
            nodes.append(Node(op, (len(nodes),), name))
            shapes.append((module.out_features,) if type(module) is nn.Linear else shapes[-1])
        return Graph(nodes), shapes


_SHIPPED = {kind: REGISTRY.for_type(kind) for kind in (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Identity, nn.Dropout)}
_RELU = relu_op()
_leaky_relu = functools.lru_cache(maxsize=64)(leaky_relu_op)  # ops are not changed by a run


def leaf_modules(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """(qualified name, module) of the leaves of nested ``nn.Sequential`` containers, in the order
    ``forward`` calls them, repeats included (``named_children`` lists a shared module once); a
    container with parameters or buffers of its own is given as a leaf (not a plain MLP).  (A
    list, not a generator: a path's partition walks it at every call.)"""
    leaves: list[tuple[str, nn.Module]] = []
    _add_leaves(module, prefix, leaves)
    return leaves


def _add_leaves(module: nn.Module, prefix: str, leaves: list) -> None:
    """:func:`leaf_modules` of ``module`` appended to ``leaves``."""
    if type(module) is nn.Sequential and not (module._parameters or module._buffers):
        for name, child in module._modules.items():  # what Sequential.forward iterates
            _add_leaves(child, f"{prefix}.{name}" if prefix else name, leaves)
    else:
        leaves.append((prefix, module))


def read_chain(model, sl: Slice) -> Chain | None:
    """The chain of ``model`` on the slice's inputs, or None if it is not a plain MLP (then the
    engine runs it, and reports whatever is wrong with it)."""
    if type(model) is not nn.Sequential or len(sl.input_shape) != 1:
        return None
    width = sl.input_shape[0]
    leaves, ops, state, seen = list(leaf_modules(model)), [], {}, set()
    for name, m in leaves:
        kind = type(m)
        if kind not in _SHIPPED or REGISTRY.for_type(kind) is not _SHIPPED[kind]:  # a user's op takes the engine
            return None
        own = {k: p for k, p in m._parameters.items() if p is not None}
        if m._buffers or own.keys() - ({"weight", "bias"} if kind is nn.Linear else set()):
            return None  # tensors the fast path would not snapshot: the engine copies the model
        params = [p.detach().to("cpu", torch.float64, copy=True) for p in own.values()]
        if not np.isfinite(sum(float(p.numpy().sum()) for p in params)):  # NaN or inf (or a sum that overflows)
            return None
        for (key, p), copy in zip(own.items(), params):  # named as named_parameters: a shared tensor once
            if id(p) not in seen:
                seen.add(id(p))
                state[f"{name}.{key}"] = copy
        if kind is nn.Linear:
            if m.in_features != width or "weight" not in own:
                return None
            copies = dict(zip(own, params))  # (by name: a parameter deleted and set again comes last)
            op, width = LinearOp(copies["weight"], copies.get("bias")), m.out_features
        elif kind is nn.ReLU:
            op = _RELU
        elif kind is nn.LeakyReLU:
            op = _leaky_relu(float(m.negative_slope))
        elif kind is nn.Dropout and m.training and m.p > 0:
            return None  # random: the engine says so
        else:
            op = None  # Identity, Dropout in eval mode
        ops.append(op)
    return Chain(leaves, ops, state)


# model -> (its fingerprint, the leaves it names, a _Snapshot of each parameter, its chain): a
# model partitioned again with the same structure and weights is not read again
_CHAINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fingerprint(leaves: list[tuple[str, nn.Module]], width: int) -> tuple:
    """What :func:`read_chain` reads of a model with ``leaves`` besides its parameters (which
    :class:`_Snapshot` checks): the registry, the input width, each leaf's name, identity, type,
    mode, settings and numbers of tensors."""
    parts: list = [REGISTRY.version, width]
    for name, m in leaves:
        own = vars(m)  # (not getattr: a module's __getattr__ is slow for a missing name)
        parts.append((name, id(m), type(m), own.get("training"), own.get("negative_slope"), own.get("p"),
                      own.get("in_features"), len(own["_buffers"]), len(own["_parameters"])))
    return tuple(parts)


class _Snapshot:
    """A parameter of a leaf when its chain was read, and a cheap exact test (:func:`_unchanged`)
    that the leaf still holds it, with the same values: the same object under the same name,
    over the same memory (address, dtype, shape, strides: the snapshot holds a view of that
    memory, so no other tensor, on any device, is given the address while it lives) with the
    same bytes (a CPU tensor that NumPy can view), else ``torch.equal`` with a copy."""

    __slots__ = ("params", "name", "param", "address", "dtype", "shape", "strides", "view", "bytes", "copy")

    def __init__(self, params: dict, name: str):
        p = self.param = params[name]
        self.params, self.name = params, name
        self.address, self.dtype, self.shape, self.strides = p.data_ptr(), p.dtype, p.shape, p.stride()
        data = p.detach()
        if data.device.type == "cpu" and data.dtype in _NUMPY_DTYPES:
            self.view, self.copy = data.numpy(), None
            self.bytes = self.view.tobytes()
        else:
            self.view, self.bytes, self.copy = None, None, data.clone()


def _unchanged(snapshots: list[_Snapshot]) -> bool:
    """Whether each snapshot's leaf holds its parameter with the values it held (one loop, no
    method calls: a path's partition runs it at every call)."""
    for s in snapshots:
        p = s.param
        if s.params.get(s.name) is not p:
            return False
        if s.view is None:
            if not torch.equal(p, s.copy):
                return False
        elif not (p.data_ptr() == s.address and p.dtype == s.dtype and p.shape == s.shape and p.stride() == s.strides
                  and s.view.tobytes() == s.bytes):
            return False
    return True


_NUMPY_DTYPES = {torch.float64, torch.float32, torch.float16, torch.int64, torch.int32}


def cached_chain(model, sl: Slice) -> Chain | None:
    """:func:`read_chain`, read again only where the model's structure or the values of its
    parameters changed since the last call (each parameter's bytes are compared with a copy of
    them, so an in-place edit through ``p.data`` is seen too)."""
    if type(model) is not nn.Sequential or len(sl.input_shape) != 1:
        return None
    leaves = leaf_modules(model)
    key = _fingerprint(leaves, sl.input_shape[0])
    hit = _CHAINS.get(model)
    if hit is not None and hit[0] == key and _unchanged(hit[2]):
        return hit[3]
    chain = read_chain(model, sl)
    if chain is not None:
        held = [m for _, m in leaves]  # (held with the chain: their identities stay theirs)
        tables = {id(m): vars(m)["_parameters"] for m in held}  # (a leaf used twice: once)
        snapshots = [_Snapshot(params, name) for params in tables.values()
                     for name, p in params.items() if p is not None]
        _CHAINS[model] = (key, held, snapshots, chain)
    return chain


ENABLED = True  # False: every run takes the engine (the tests use it to run both executors)


def chain_applies(dtype, device) -> bool:
    """Whether runs in ``dtype`` on ``device`` can take the fast path."""
    if not (ENABLED and compiled.AVAILABLE and dtype == torch.float64):
        return False
    return (device if isinstance(device, torch.device) else torch.device(device)).type == "cpu"


class ChainRun(Engine):
    """One run of the fast path over a slice: the engine's executor on the graph a
    :class:`Chain` makes (see the module doc)."""
