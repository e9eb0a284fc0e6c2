"""Consecutive affine ops composed into one op with precomputed weights, where that is cheaper
than the chain: a convolution and the BatchNorm after it become one convolution; pools,
reshapes, BatchNorms and linear layers before a linear layer become one linear layer (VGG's
``AdaptiveAvgPool2d((7, 7))`` of a 1x1 map, the flatten and the first classifier layer: 512
input columns instead of 25,088).

Only a value that exactly one node reads is composed away (a residual's shared value stays),
the piecewise-linear ops are untouched (the layers, codes and edge units of a partition do not
change), and every composed op is checked against its chain at an example input, as the tracer
checks each op against the model: one that disagrees is not used (the chain stays).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter

import torch

from .trace import Graph, Node, agrees

__all__ = ["DENSE_SMALL", "compose"]

DENSE_SMALL = 1 << 22  # a composed dense weight at most this many numbers is small (else no larger than the layer's)


def compose(graph: Graph, shapes: list[tuple[int, ...]], dtype, device) -> tuple[Graph, list[tuple[int, ...]]]:
    """The graph with its chains of affine ops composed (see the module), and the per-sample
    shape of each of its values (``shapes``: those of ``graph``'s, input first; dtype, device:
    of the graph's weights)."""
    nodes = graph.nodes
    readers = Counter(a for node in nodes for a in node.args)
    ops = [node.op for node in nodes]
    args = [node.args for node in nodes]
    names = [node.name for node in nodes]
    gone: set[int] = set()

    def producer(i: int) -> int | None:
        """The node whose output is node i's one input, where it is a single-input affine op
        that no other node reads."""
        if len(args[i]) != 1 or args[i][0] == 0 or readers[args[i][0]] != 1:
            return None
        j = args[i][0] - 1
        return j if not ops[j].splits and len(args[j]) == 1 and j not in gone else None

    def take(i: int, chain: list[int], op) -> bool:
        """Node i becomes ``op``, which stands for the nodes ``chain`` (first to run first) and
        node i, if it agrees with them at an example input."""
        example = torch.randn(3, *shapes[args[chain[0]][0]], generator=torch.Generator().manual_seed(0),
                              dtype=torch.float64).to(dtype=dtype, device=device)
        if not _checked(op, [ops[j] for j in chain] + [ops[i]], example):
            return False
        ops[i], args[i] = op, args[chain[0]]
        names[i] = "+".join([names[j] for j in chain] + [names[i]])
        gone.update(chain)
        return True

    for i in range(len(nodes)):
        if ops[i].splits:
            continue
        while (j := producer(i)) is not None:  # closed-form pairs: Conv + BatchNorm, ...
            fused = ops[j].then(ops[i], shapes[j + 1])
            if fused is None or not take(i, [j], fused):
                break
        if ops[i].absorbs(shapes[args[i][0]]):
            chain = _cheapest_chain(i, ops, args, shapes, producer)
            absorbed = _absorbed(ops[i], [ops[j] for j in chain], shapes[args[chain[0]][0]]) if chain else None
            if absorbed is not None:
                take(i, chain, absorbed)
    if not gone:
        return graph, shapes
    kept = [i for i in range(len(nodes)) if i not in gone]
    value = {0: 0} | {i + 1: k + 1 for k, i in enumerate(kept)}
    composed = [Node(ops[i], tuple(value[a] for a in args[i]), names[i]) for i in kept]
    return Graph(composed), [shapes[0]] + [shapes[i + 1] for i in kept]


def _cheapest_chain(i: int, ops, args, shapes, producer) -> list[int]:
    """The chain of nodes before node i (first to run first) whose composition with node i into
    one dense op saves the most multiply-adds, with a composed weight no larger than node i's
    own cost (or small); empty if none saves any."""
    out = math.prod(shapes[i + 1])
    cost = ops[i].cost([shapes[a] for a in args[i]], shapes[i + 1])
    limit = max(cost, DENSE_SMALL)
    chain: list[int] = []
    best: list[int] = []
    saved = 0
    j = producer(i)
    while j is not None:
        chain.insert(0, j)
        cost += ops[j].cost([shapes[args[j][0]]], shapes[j + 1])
        dense = math.prod(shapes[args[j][0]]) * out
        if dense <= limit and cost - dense > saved:
            best, saved = list(chain), cost - dense
        j = producer(j)
    return best


def _absorbed(op, chain: list, shape: tuple[int, ...]):
    """``op.absorb(chain, shape)``, or None (with a warning) where a chain's linear part cannot
    be run on a basis or differentiated (a registered op of the user's, e.g. one through NumPy)."""
    try:
        return op.absorb(chain, shape)
    except (RuntimeError, TypeError, NotImplementedError) as err:
        warnings.warn(f"splinecam: could not compose {[type(s).__name__ for s in chain]} into {type(op).__name__} "
                      f"({type(err).__name__}: {err}); they run one after the other.", RuntimeWarning, stacklevel=3)
        return None


def _checked(op, chain: list, x: torch.Tensor) -> bool:
    """Whether ``op`` computes what the ops ``chain`` compute, one after the other, on the
    example inputs x (B, *shape) (the tracer's test of an op against the model); warns if not."""
    with torch.no_grad():
        value = x
        for step in chain:
            value = step.forward(value)
        if agrees([op], [x], value):
            return True
    warnings.warn(f"splinecam: composing {[type(s).__name__ for s in chain]} gave an op that disagrees with them "
                  "at an example input; they run one after the other (please report this).", RuntimeWarning, stacklevel=3)
    return False
