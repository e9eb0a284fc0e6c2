"""Model -> graph of ops.  Every unsupported piece is collected and reported at once."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .ops import ElementwiseOp, Op, _TrainingMode, factory_for

SMOOTH = (
    nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.ELU, nn.SELU, nn.CELU, nn.Mish,
    nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Hardswish, nn.Hardsigmoid, nn.LogSigmoid,
    nn.Softsign, nn.Tanhshrink, nn.GLU, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm,
)


class UnsupportedModelError(ValueError):
    """The model contains operations splinecam cannot represent exactly."""


@dataclass
class Node:
    """One op of the graph.  Value 0 is the network input; node i produces value i + 1."""

    op: Op
    args: tuple[int, ...]
    name: str


@dataclass
class Graph:
    nodes: list[Node]

    def forward(self, x: torch.Tensor, on_split=None) -> torch.Tensor:
        """Evaluate on inputs (B, *shape).  ``on_split(layer, z)`` sees each CPWL op's input."""
        values = [x]
        layer = 0
        for node in self.nodes:
            args = [values[a] for a in node.args]
            if isinstance(node.op, ElementwiseOp):
                if on_split is not None:
                    on_split(layer, args[0])
                layer += 1
            values.append(node.op.forward(*args))
        return values[-1]

    @property
    def split_nodes(self) -> list[Node]:
        return [n for n in self.nodes if isinstance(n.op, ElementwiseOp)]


def _describe(name: str, module: nn.Module) -> str:
    where = name or "<model>"
    if isinstance(module, SMOOTH):
        return f"{where} ({type(module).__name__}): smooth, not piecewise-linear, so no exact partition exists"
    return f"{where} ({type(module).__name__}): not supported"


def _leaves(model: nn.Module, prefix: str = ""):
    if isinstance(model, nn.Sequential):
        for name, child in model.named_children():
            yield from _leaves(child, f"{prefix}.{name}" if prefix else name)
    else:
        yield prefix, model


def trace(model: nn.Module) -> Graph:
    """Graph of a model built as ``nn.Sequential`` (nested allowed) of supported modules.

    Raises :class:`UnsupportedModelError` naming every unsupported module, and
    every BatchNorm/Dropout that is in training mode.
    """
    nodes: list[Node] = []
    problems: list[str] = []
    for name, module in _leaves(model):
        factory = factory_for(module)
        if factory is None:
            problems.append(_describe(name, module))
            continue
        try:
            op = factory(module)
        except _TrainingMode as err:
            problems.append(f"{name or '<model>'} ({type(module).__name__}): {err}; call model.eval() first")
            continue
        if op is not None:
            op.name = name
            nodes.append(Node(op, (len(nodes),), name))
    if problems:
        raise UnsupportedModelError(
            "splinecam cannot compute an exact partition for this model:\n  - "
            + "\n  - ".join(problems)
            + "\nSupported: nn.Sequential of Linear, ReLU, LeakyReLU, BatchNorm1d (eval), "
            "Dropout (eval), Identity, Flatten; add others with splinecam.register_op."
        )
    return Graph(nodes)


def check_finite(model: nn.Module) -> None:
    bad = [n for n, t in list(model.named_parameters()) + list(model.named_buffers())
           if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ValueError(f"the model has NaN or inf values in: {', '.join(bad)}.")


def prepare(model: nn.Module, dtype: torch.dtype, device) -> tuple[nn.Module, Graph]:
    """A private copy of the model in ``dtype`` on ``device`` and its graph.  The user's model is untouched."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    check_finite(model)
    trace(model)  # report problems before paying for a copy
    twin = copy.deepcopy(model).to(dtype=dtype, device=device)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin, trace(twin)
