"""The executor of a plan: batches of regions through the graph's ops, on the work stack of
:mod:`splinecam.run.stack`.  Affine ops push the states (in blocks of a fixed size, so that a
wide op stays interruptible; at the plan's gather nodes, the small batches that reach them are
first gathered into larger ones); split ops split the regions, and their pieces go on the stack to
be made chunk by chunk when popped (the pieces a split has not finished go on it to be split
again).  The rules themselves belong to the ops; the walk over the nodes is the graph's."""

from __future__ import annotations

import functools
import math

import torch

from ..ops import Split
from .plan import PUSH_ELEMENTS
from .stack import Batch, WorkStack
from .trace import Node

__all__ = ["Engine"]


class Engine(WorkStack):
    """Computes the partition of a domain (cells of any dimension) for a plan (see :class:`WorkStack`)."""

    def advance(self, batch: Batch, stack: list) -> Batch | None:
        """Run nodes until the graph ends (return the batch) or a split (push its pieces, and
        those it left unfinished, to be made when popped, and return None)."""
        graph, gathers = self.plan.graph, self.plan.gathers
        for i, node, args in graph.walk(batch.values, batch.node):
            if not node.op.splits:
                if i in gathers and batch.gathered != i and len(batch) < gathers[i]:  # wait for more regions
                    batch.node = i
                    batch = self.gather(batch)
                    return None if batch is None else self.advance(batch, stack)
                batch.values[i + 1] = self._push_affine(node, args, math.prod(self.plan.shapes[i + 1]))
                continue
            batch.node = i
            if self.prune is not None:
                batch = self.settle(batch, i)
                if batch is None:
                    return None
            split = node.op.split(batch.polys, batch.values[node.args[0]], self.contexts[i])
            self.contexts[i].check(len(split))
            chunk = self.plan.chunks[i]
            if split.rest is not None and len(split.rest):  # split again later: hold only their regions' states
                keep, index = torch.unique(split.rest_parent, return_inverse=True)
                held = batch.select(batch.polys.select(keep)[0], keep, i)
                self.push(stack, len(split.rest), chunk, functools.partial(self._again, held, split.rest, index))
            self.push(stack, len(split), chunk, functools.partial(self._pieces, batch, split))
            return None
        batch.node = len(graph.nodes)
        return batch

    def _push_affine(self, node: Node, states: list[torch.Tensor], out_size: int) -> torch.Tensor:
        """``node.op.push`` in blocks of regions of a fixed size (about ``PUSH_ELEMENTS`` numbers
        in and out per block), so that an op as costly as a wide linear layer stays interruptible
        and the result does not depend on the machine's speed."""
        op, r = node.op, states[0].shape[0]
        block = max(1, PUSH_ELEMENTS // (sum(math.prod(s.shape[1:]) for s in states) + 3 * out_size))
        if r <= block:  # most pushes: one block
            return op.push(*states)
        out = []
        for s in range(0, r, block):
            if s:
                self.watch.check_time()
            out.append(op.push(*[x[s : s + block] for x in states]))
        return torch.cat(out)

    def _again(self, held: Batch, rest, index: torch.Tensor, sel: torch.Tensor) -> Batch:
        """The batch of the pieces ``sel`` of ``rest`` (left to split again), whose regions are
        ``index`` (of ``held``)."""
        return held.select(rest.select(sel)[0], index[sel], held.node)

    def _pieces(self, parent: Batch, split: Split, sel: torch.Tensor) -> Batch:
        """The batch of the finished pieces ``sel`` of ``split``, past its node."""
        graph, i = self.plan.graph, parent.node
        arg = graph.nodes[i].args[0]
        whole = len(sel) == len(split)  # the one chunk: sel is all the pieces, in order
        index = split.parent if whole else split.parent[sel]
        pieces = split.pieces if whole else split.pieces.select(sel)[0]
        last = graph.last_use()[arg] == i
        if split.gather is not None:  # the op makes the pieces' states from their regions' in one pass
            out, code = split.gather(parent.values[arg], sel)
            child = Batch(pieces, {k: v[index] for k, v in parent.values.items() if k != arg or not last},
                          [c[index] for c in parent.codes], i)
        else:
            child = parent.select(pieces, index, i)
            out, code = split.apply(child.values[arg], sel, last)
        child.values[i + 1] = out
        child.codes.append(code)
        graph.retire(child.values, i)
        child.node = i + 1
        return child
