"""One binary-space-partition loop: split convex polygons by a list of items each, one item
per polygon per round, until no item acts on any piece.

An *item* is whatever splits a piece: a line (elementwise ops), a max-pooling
window (max-type ops).  Every piece carries a row of *carry* (its state so
far, e.g. which side of each line it lies on, or the winner of each window),
handed from a piece to its children.  Each round:

1. every piece with pending items is split by its first item (``step``);
2. its other items pass to each of its children, and ``settle`` drops those
   that no longer act on a child (recording in the child's carry what it
   needs), so a child only ever sees the items that still cross it.
"""

from __future__ import annotations

from typing import Callable

import torch

from .polygons import Polygons, first_of_runs, ragged_arange

# step(pieces (A,), items (A,), carry (A, ...), origin (A,)) -> (children (n,), child_parent (n,) in [0, A), carry (n, ...))
Step = Callable[[Polygons, torch.Tensor, torch.Tensor, torch.Tensor], tuple[Polygons, torch.Tensor, torch.Tensor]]
# settle(children, piece (M,) sorted, item (M,), carry (n, ...), origin (n,)) -> (keep (M,) bool, carry (n, ...))
Settle = Callable[[Polygons, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def bsp(polys: Polygons, pend_piece: torch.Tensor, pend_item: torch.Tensor, carry: torch.Tensor,
        step: Step, settle: Settle, check: Callable[[int], None] | None = None
        ) -> tuple[Polygons, torch.Tensor, torch.Tensor]:
    """Split ``polys`` (P,) by the (polygon, item) pairs ``pend_piece``, ``pend_item`` (L,),
    sorted by polygon.  ``carry`` (P, ...) is the initial state of each polygon.

    Returns the final pieces (n,), the polygon each came from (n,) and their carry (n, ...).
    ``check(n)`` is called with the number of pieces so far after each round.
    """
    dev = polys.verts.device
    origin = torch.arange(len(polys), device=dev)
    done: list[tuple[Polygons, torch.Tensor, torch.Tensor]] = []
    while pend_piece.numel():
        first = first_of_runs(pend_piece)
        active, item = pend_piece[first], pend_item[first]
        is_active = torch.zeros(len(polys), dtype=torch.bool, device=dev)
        is_active[active] = True
        if active.numel() < len(polys):
            done.append((polys.mask(~is_active), origin[~is_active], carry[~is_active]))

        children, child_parent, child_carry = step(polys.mask(is_active), item, carry[active], origin[active])
        order = torch.sort(child_parent, stable=True).indices  # the children of each active piece
        counts = torch.bincount(child_parent, minlength=len(active))
        start = torch.cumsum(counts, 0) - counts

        rest = ~first
        slot = torch.searchsorted(active, pend_piece[rest])  # the active piece of each other item
        pair, k = ragged_arange(counts[slot])
        new_piece = order[start[slot][pair] + k]
        new_item = pend_item[rest][pair]
        by_piece = torch.sort(new_piece, stable=True).indices
        new_piece, new_item = new_piece[by_piece], new_item[by_piece]

        origin = origin[active][child_parent]
        keep, carry = settle(children, new_piece, new_item, child_carry, origin)
        pend_piece, pend_item = new_piece[keep], new_item[keep]
        polys = children
        if check is not None:
            check(len(polys) + sum(len(d[0]) for d in done))
    done.append((polys, origin, carry))
    return Polygons.cat([d[0] for d in done]), torch.cat([d[1] for d in done]), torch.cat([d[2] for d in done])
