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

from .polygons import Polygons, first_of_runs, ragged_arange, spatial_order

__all__ = ["bsp"]

# step(pieces (A,), items (A,), carry (A, ...), origin (A,)) -> (children (n,), child_parent (n,) in [0, A), carry (n, ...))
Step = Callable[[Polygons, torch.Tensor, torch.Tensor, torch.Tensor], tuple[Polygons, torch.Tensor, torch.Tensor]]
# settle(children, piece (M,) sorted, item (M,), carry (n, ...), origin (n,)) -> (keep (M,) bool, carry (n, ...))
Settle = Callable[[Polygons, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def bsp(polys: Polygons, pend_piece: torch.Tensor, pend_item: torch.Tensor, carry: torch.Tensor,
        step: Step, settle: Settle, check: Callable[[int], None] | None = None,
        fits: Callable[[int], bool] | None = None, max_pairs: int | None = None
        ) -> tuple[Polygons, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split ``polys`` (P,) by the (polygon, item) pairs ``pend_piece``, ``pend_item`` (L,),
    sorted by polygon.  ``carry`` (P, ...) is the initial state of each polygon.

    Returns the final pieces (n,), the polygon each came from (n,), their carry (n, ...) and
    (n,) bool: the pieces left unfinished (items still act on them), in a spatial order.  Work is bounded: when
    more than ``max_pairs`` (piece, item) pairs are pending after a round, the pieces past
    that many pairs in a spatial order are set aside, unfinished, and the others go on (so a
    compact area is finished); when ``fits(pieces)`` turns False, all stop.
    ``check(n)`` is called with the number of pieces so far after each round.
    """
    dev = pend_piece.device
    origin = torch.arange(len(polys), device=dev)
    done: list[tuple[Polygons, torch.Tensor, torch.Tensor]] = []
    aside: list[tuple[Polygons, torch.Tensor, torch.Tensor]] = []
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
        if max_pairs is not None and pend_piece.numel() > max_pairs:
            later = _later(polys, pend_piece, max_pairs)
            aside.append((polys.mask(later), origin[later], carry[later]))
            now = ~later
            polys, origin, carry = polys.mask(now), origin[now], carry[now]
            moved = torch.cumsum(now, 0) - 1
            kept = now[pend_piece]
            pend_piece, pend_item = moved[pend_piece[kept]], pend_item[kept]
        n_pieces = len(polys) + sum(len(d[0]) for d in done + aside)
        if check is not None:
            check(n_pieces)
        if fits is not None and pend_piece.numel() and not fits(n_pieces):
            break
    n_done = sum(len(d[0]) for d in done)
    done.append((polys, origin, carry))
    unfinished = torch.zeros(n_done + len(polys) + sum(len(d[0]) for d in aside), dtype=torch.bool, device=dev)
    unfinished[n_done + pend_piece] = True
    unfinished[n_done + len(polys):] = True
    done += aside
    pieces, origin, carry = type(polys).cat([d[0] for d in done]), torch.cat([d[1] for d in done]), torch.cat([d[2] for d in done])
    if unfinished.any():  # the unfinished pieces in a spatial order, so that each next batch of them is compact
        order = torch.arange(len(pieces), device=dev)
        open_ = torch.nonzero(unfinished).flatten()
        order[open_] = open_[spatial_order(pieces.select(open_)[0].centroids())]
        pieces, origin, carry = pieces.select(order)[0], origin[order], carry[order]
    return pieces, origin, carry, unfinished


def _later(polys: Polygons, pend_piece: torch.Tensor, max_pairs: int) -> torch.Tensor:
    """(P,) bool: the pieces with pending pairs ``pend_piece`` (sorted) past the first
    ``max_pairs`` pairs in the spatial order of their centroids (at least one piece stays)."""
    counts = torch.bincount(pend_piece, minlength=len(polys))
    busy = torch.nonzero(counts).flatten()
    busy = busy[spatial_order(polys.centroids()[busy])]
    n_now = max(1, int((torch.cumsum(counts[busy], 0) <= max_pairs).sum()))
    later = torch.zeros(len(polys), dtype=torch.bool, device=pend_piece.device)
    later[busy[n_now:]] = True
    return later
