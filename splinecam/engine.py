"""Drive the ops of a graph over batches of regions: propagate affine states, split
regions at piecewise-linear ops, chunk the work so that memory stays bounded."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .ops import AffineOp, ElementwiseOp, MaxOp
from .polygons import Polygons, cut, max_cells, possible_winners, sides
from .slices import Slice
from .trace import Graph

_BLOCK_ELEMENTS = 1 << 24  # vertex-by-unit evaluations held at once (128 MiB in float64)


class RegionLimitError(RuntimeError):
    """The partition has more regions than the ``max_regions`` limit."""


@dataclass
class Batch:
    """Regions that have gone through the same ops: polygons and live activation states."""

    polys: Polygons
    values: dict[int, torch.Tensor]  # value index -> (R, 3, *shape): value, d/du, d/dv
    codes: list[torch.Tensor]  # per split layer so far: (R, ceil(bits / 8)) packed bits, uint8
    node: int = 0  # next node to run

    def __len__(self) -> int:
        return len(self.polys)

    def take(self, index: torch.Tensor, polys: Polygons | None = None) -> "Batch":
        """The regions ``index`` (their polygons given, or selected)."""
        return Batch(
            self.polys.select(index)[0] if polys is None else polys,
            {k: v[index] for k, v in self.values.items()},
            [c[index] for c in self.codes],
            self.node,
        )


@dataclass
class Split:
    """The children of a batch at a split op, made on demand, chunk by chunk, so that only
    the parent batch and one chunk of children hold activation states at a time."""

    parent: Batch
    polys: Polygons  # (n,) the children
    origin: torch.Tensor  # (n,) parent region of each child
    finish: Callable[[Batch, torch.Tensor], None]  # fills the op's output of children ``sel``

    def __len__(self) -> int:
        return len(self.polys)

    def make(self, sel: torch.Tensor) -> Batch:
        """The children ``sel`` (sorted index) as a batch that has run the split op."""
        child = self.parent.take(self.origin[sel], self.polys.select(sel)[0])
        self.finish(child, sel)
        return child


@dataclass
class LayerInfo:
    name: str
    units: int
    bits: int  # code bits (units x breakpoints)


@dataclass
class EngineResult:
    verts: np.ndarray  # (N, 2) absolute slice coordinates
    offsets: np.ndarray  # (R + 1,)
    labels: np.ndarray  # (N, 2) (layer, unit) of each edge, -1 on the border
    affine: np.ndarray  # (R, K, 3)
    codes: np.ndarray  # (R, sum over layers of ceil(bits / 8)) packed bits, each layer byte-aligned
    layers: list[LayerInfo] = field(default_factory=list)
    seconds: float = 0.0
    centroid_outputs: np.ndarray | None = None  # (R, K) outputs at the region centroids, computed near the slice centre


def pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """(R, n) bool -> (R, ceil(n / 8)) uint8, most significant bit first (as ``np.packbits``)."""
    r, n = bits.shape
    bits = torch.nn.functional.pad(bits, (0, -n % 8)).reshape(r, -1, 8).to(torch.uint8)
    weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8, device=bits.device)
    return (bits * weights).sum(-1, dtype=torch.uint8)


def _vertex_extremes(polys: Polygons, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Max and min over each polygon's vertices of its affine functions.

    maps: (R, 3, U) rows (value at the origin, d/du, d/dv).  Returns two (R, U).
    """
    h = polys.homogeneous_padded()[..., [2, 0, 1]]  # rows (1, u, v)
    counts = polys.counts
    r, vmax = h.shape[:2]
    u = maps.shape[2]
    step = max(1, _BLOCK_ELEMENTS // max(1, vmax * u))
    hi, lo = [], []
    for s in range(0, r, step):
        width = int(counts[s : s + step].max())  # padding repeats vertices: trim it per block
        z = torch.bmm(h[s : s + step, :width], maps[s : s + step])
        hi.append(z.amax(1))
        lo.append(z.amin(1))
    return torch.cat(hi), torch.cat(lo)


class Engine:
    """Computes the partition of a slice for a traced graph."""

    def __init__(self, graph: Graph, sl: Slice, dtype, device, rtol: float, max_regions: int, chunk_size: int, progress):
        self.graph, self.slice = graph, sl
        self.dtype, self.device = dtype, device
        self.rtol, self.max_regions, self.chunk_size = rtol, max_regions, chunk_size
        self.progress = progress
        poly = torch.as_tensor(sl.polygon, dtype=dtype, device=device)
        self.center = poly.mean(0)
        self.extent = (poly - self.center).abs().amax(0)
        self.root = poly - self.center
        self.layer_of = {}
        for i, node in enumerate(graph.nodes):
            if isinstance(node.op, ElementwiseOp):
                node.op.to(device)
            if isinstance(node.op, (ElementwiseOp, MaxOp)):
                self.layer_of[i] = len(self.layer_of)
        last_use = {}
        for i, node in enumerate(graph.nodes):
            for a in node.args:
                last_use[a] = i
        self.last_use = last_use
        self.layers: list[LayerInfo] = []

    # -- the driver ----------------------------------------------------------

    def run(self) -> EngineResult:
        start = time.perf_counter()
        origin = torch.as_tensor(self.slice.origin, dtype=self.dtype, device=self.device)
        basis = torch.as_tensor(self.slice.basis, dtype=self.dtype, device=self.device)
        x_ref = origin.reshape(-1) + basis @ self.center
        state = torch.stack([x_ref, basis[:, 0], basis[:, 1]]).reshape(1, 3, *self.slice.input_shape)
        stack = [Batch(Polygons.single(self.root), {0: state}, [])]
        out: list[Batch] = []
        self.n_done = self.pending = 0
        bar = self._bar()
        while stack:
            item = stack.pop()
            if isinstance(item, tuple):  # a chunk of a split, made now
                split, sel, i = item
                item = split.make(sel)
                self._retire(item, i)
            batch = self._advance(item, stack)
            if batch is not None:
                out.append(self._finish(batch))
                self.n_done += len(batch)
                if bar is not None:
                    bar.update(min(float(batch.polys.areas().sum()), bar.total - bar.n))
                    bar.set_postfix(regions=self.n_done, refresh=False)
        if bar is not None:
            bar.close()
        return self._collect(out, time.perf_counter() - start)

    def _bar(self):
        if self.progress is False:
            return None
        from tqdm.auto import tqdm

        return tqdm(
            total=float(self.slice.area), delay=0 if self.progress else 2.0, desc="splinecam",
            bar_format="{desc}: {percentage:3.0f}% of the slice |{bar}| {elapsed}<{remaining}{postfix}",
        )

    def _advance(self, batch: Batch, stack: list) -> Batch | None:
        """Run nodes until the graph ends (return the batch) or a split makes more regions than
        a chunk (push its chunks, to be made when popped, and return None)."""
        nodes = self.graph.nodes
        self.pending = sum(len(item[1]) if isinstance(item, tuple) else len(item) for item in stack)
        while batch.node < len(nodes):
            i = batch.node
            node = nodes[i]
            if isinstance(node.op, (ElementwiseOp, MaxOp)):
                split = self._split(batch, i) if isinstance(node.op, ElementwiseOp) else self._split_max(batch, i)
                self._check_limit(len(split), node)
                if len(split) > self.chunk_size:
                    for s in reversed(range(0, len(split), self.chunk_size)):
                        stack.append((split, torch.arange(s, min(s + self.chunk_size, len(split)), device=self.device), i))
                    return None
                batch = split.make(torch.arange(len(split), device=self.device))
            elif isinstance(node.op, AffineOp):
                batch.values[i + 1] = node.op.push(*[batch.values[a] for a in node.args])
            else:
                raise TypeError(f"no engine rule for op {type(node.op).__name__} at {node.name}")
            self._retire(batch, i)
        return batch

    def _retire(self, batch: Batch, i: int) -> None:
        """After node i: drop the values it was the last to use, move on to node i + 1."""
        for a in self.graph.nodes[i].args:
            if self.last_use[a] == i:
                batch.values.pop(a, None)
        batch.node = i + 1

    def _check_limit(self, regions: int, node) -> None:
        """Raise if ``regions`` more (at least) would pass ``max_regions``."""
        total = self.n_done + self.pending + regions
        if total > self.max_regions:
            raise RegionLimitError(
                f"the partition has more than max_regions={self.max_regions:,} regions "
                f"(at least {total:,} at {node.name or 'an unnamed op'}); "
                "use a smaller slice or pass a larger max_regions."
            )

    # -- splitting at a piecewise-linear op -----------------------------------

    def _split(self, batch: Batch, i: int) -> Split:
        node = self.graph.nodes[i]
        op: ElementwiseOp = node.op
        layer = self.layer_of[i]
        z = batch.values[node.args[0]]
        shape = z.shape[2:]
        units = int(np.prod(shape))
        if len(self.layers) <= layer:
            self.layers.append(LayerInfo(node.name, units, units * op.breakpoints.numel()))
        z = z.reshape(len(batch), 3, units)
        bps = op.breakpoints.to(z)

        hi, lo = _vertex_extremes(batch.polys, z)
        e0, e1 = (float(e) * self.rtol for e in self.extent)
        slope_tol = z[:, 1].abs().mul_(e0).add_(z[:, 2].abs(), alpha=e1)  # (R, U)
        tol = (z[:, 0, :, None] - bps).abs_().mul_(self.rtol).add_(slope_tol[..., None])  # (R, U, k)
        above = (hi[..., None] - bps) > tol
        below = (lo[..., None] - bps) < -tol
        code = above.clone()  # (R, U, k); crossing units are fixed per piece below
        flat = torch.nonzero(~above & ~below, as_tuple=True)  # constant on the region (dead units)
        if flat[0].numel():
            cen = batch.polys.centroids()[flat[0]]
            r, u = flat[0], flat[1]
            code[flat] = z[r, 0, u] + z[r, 1, u] * cen[:, 0] + z[r, 2, u] * cen[:, 1] > bps[flat[2]]
        region, unit, bp = torch.nonzero(above & below, as_tuple=True)
        pair_lines = torch.stack([z[region, 1, unit], z[region, 2, unit], z[region, 0, unit] - bps[bp]], 1)
        pair_labels = torch.stack([torch.full_like(unit, layer), unit], 1)
        pair_tol = tol[region, unit, bp]
        self._check_limit(len(batch) + region.numel(), node)  # each crossing line adds a piece
        polys, parent, (piece, pair, side) = _split_all(
            batch.polys, region, pair_lines, pair_tol, pair_labels, check=lambda n: self._check_limit(n, node))

        # each piece lies on one side of every line that crossed its parent (recorded by the
        # cuts); only a piece flat on a line within tolerance reads the side at its centroid
        code = code[parent]
        flat = side == 0
        cen = polys.centroids()[piece[flat]]
        lf = pair_lines[pair[flat]]
        at_cen = lf[:, 0] * cen[:, 0] + lf[:, 1] * cen[:, 1] + lf[:, 2] > 0
        value = side > 0
        value[flat] = at_cen
        code[piece, unit[pair], bp[pair]] = value
        inplace = self.last_use[node.args[0]] == i

        def finish(child: Batch, sel: torch.Tensor) -> None:
            zc = child.values[node.args[0]].reshape(len(child), 3, units)
            child.values[i + 1] = op.push(zc, code[sel], inplace=inplace).reshape(len(child), 3, *shape)
            child.codes.append(pack_bits(code[sel].reshape(len(child), -1)))

        return Split(batch, polys, parent, finish)

    # -- splitting at a max-type op (max-pooling, maxout, max of activations) ------

    def _split_max(self, batch: Batch, i: int) -> Split:
        """Split each region into the cells where one candidate of each output unit wins.

        Windows whose winner is the same at every vertex of a region are settled
        at once (vectorised); the others are split window by window, each round
        giving every piece its next unsettled window (a BSP over windows).
        Edges get the label (layer, output unit); the code is the winner's slot.
        """
        node = self.graph.nodes[i]
        op: MaxOp = node.op
        layer = self.layer_of[i]
        z = batch.values[node.args[0]]
        index, out_shape = op.index_for(z.shape[2:], self.device)
        n_out, k = index.shape
        if len(self.layers) <= layer:
            self.layers.append(LayerInfo(node.name, n_out, n_out * op.bits_per_unit(k)))
        valid = index >= 0
        safe = index.clamp_min(0)
        lines = z.reshape(len(batch), 3, -1)[:, [1, 2, 0]]  # rows (d/du, d/dv, value)
        winner, unsettled = self._settled_winners(batch.polys, lines, safe, valid)
        region, window = torch.nonzero(unsettled, as_tuple=True)
        polys, parent, winner = self._split_windows(batch.polys, lines, safe, valid, winner, region, window, layer,
                                                    check=lambda n: self._check_limit(n, node))

        def finish(child: Batch, sel: torch.Tensor) -> None:
            flat = child.values[node.args[0]].reshape(len(child), 3, -1)
            chosen = safe[torch.arange(n_out, device=self.device), winner[sel].long()]  # (Rc, O) input unit
            out = flat.gather(2, chosen[:, None, :].expand(-1, 3, -1))
            child.values[i + 1] = out.reshape(len(child), 3, *out_shape)
            child.codes.append(pack_bits(op.winner_bits(winner[sel], k)))

        return Split(batch, polys, parent, finish)

    def _settled_winners(self, polys: Polygons, lines, safe, valid) -> tuple[torch.Tensor, torch.Tensor]:
        """Per region and window: the lowest candidate that is (within tolerance) the max at every
        vertex, and whether there is none.  lines (R, 3, N); safe, valid (O, k).  Returns (R, O) x2."""
        h = polys.homogeneous_padded()
        r, vmax = h.shape[:2]
        n_out, k = safe.shape
        ext = self.extent
        dtype = torch.int8 if k < 128 else torch.int32
        winners, unsettled = [], []
        step = max(1, _BLOCK_ELEMENTS // max(1, 2 * vmax * n_out * k))
        for s in range(0, r, step):
            cand = lines[s : s + step][:, :, safe]  # (r, 3, O, k)
            vals = torch.einsum("rvj,rjok->rvok", h[s : s + step], cand).masked_fill(~valid, -torch.inf)
            size = (cand[:, 0].abs() * ext[0] + cand[:, 1].abs() * ext[1] + cand[:, 2].abs()).masked_fill(~valid, 0)
            tol = 2 * self.rtol * size.amax(-1)  # (r, O)
            top = vals.amax(-1, keepdim=True)
            wins = (vals >= top - tol[:, None, :, None]).all(1) & valid  # (r, O, k)
            winners.append(wins.to(torch.int8).argmax(-1).to(dtype))
            unsettled.append(~wins.any(-1))
        return torch.cat(winners), torch.cat(unsettled)

    def _split_windows(self, polys, lines, safe, valid, winner, pend_piece, pend_window, layer, check):
        """BSP over the unsettled (region, window) pairs, sorted by region.  Returns the pieces,
        the region each came from, and their (n, O) winners; ``check(n)`` sees the piece count."""
        dev = self.device
        origin = torch.arange(len(polys), device=dev)
        done = []
        while pend_piece.numel():
            first = torch.ones_like(pend_piece, dtype=torch.bool)
            first[1:] = pend_piece[1:] != pend_piece[:-1]
            active, window = pend_piece[first], pend_window[first]
            idle = torch.ones(len(polys), dtype=torch.bool, device=dev)
            idle[active] = False
            idle = torch.nonzero(idle).flatten()
            if idle.numel():
                done.append((polys.select(idle)[0], origin[idle], winner[idle]))

            cand = safe[window]  # (A, k) input units
            funcs = lines[origin[active]].gather(2, cand[:, None, :].expand(-1, 3, -1)).transpose(1, 2)  # (A, k, 3)
            labels = torch.stack([torch.full_like(window, layer), window], 1)
            mc = max_cells(polys.select(active)[0], funcs, self.rtol, self.extent, valid[window], labels)
            order = torch.sort(mc.parent, stable=True).indices  # children grouped by parent
            cells, _ = mc.cells.select(order)
            cparent, cwin = mc.parent[order], mc.winner[order]
            new_winner = winner[active][cparent]
            new_winner[torch.arange(len(cparent), device=dev), window[cparent]] = cwin.to(winner.dtype)

            counts = torch.bincount(cparent, minlength=len(active))
            start = torch.cumsum(counts, 0) - counts
            rest = ~first
            slot = torch.searchsorted(active, pend_piece[rest])
            reps = counts[slot]
            total = int(reps.sum())
            base = torch.repeat_interleave(start[slot], reps, output_size=total)
            offs = torch.arange(total, device=dev) - torch.repeat_interleave(torch.cumsum(reps, 0) - reps, reps, output_size=total)
            new_piece = base + offs
            new_window = torch.repeat_interleave(pend_window[rest], reps, output_size=total)
            order = torch.sort(new_piece, stable=True).indices
            pend_piece, pend_window = new_piece[order], new_window[order]
            origin = origin[active][cparent]

            # windows with a single possible winner in a piece are settled there
            cand = safe[pend_window]
            funcs = lines[origin[pend_piece]].gather(2, cand[:, None, :].expand(-1, 3, -1)).transpose(1, 2)
            possible = possible_winners(cells.select(pend_piece)[0], funcs, self.rtol, self.extent, valid[pend_window])
            single = possible.sum(1) == 1
            new_winner[pend_piece[single], pend_window[single]] = possible[single].to(torch.int8).argmax(1).to(winner.dtype)
            pend_piece, pend_window = pend_piece[~single], pend_window[~single]
            polys, winner = cells, new_winner
            check(len(polys) + sum(len(d[0]) for d in done))
        done.append((polys, origin, winner))
        return (Polygons.cat([d[0] for d in done]), torch.cat([d[1] for d in done]), torch.cat([d[2] for d in done]))

    # -- output ---------------------------------------------------------------

    def _finish(self, batch: Batch) -> Batch:
        """Move a finished batch to the CPU in absolute coordinates, keeping what the result needs."""
        out = batch.values[len(self.graph.nodes)]
        out = out.reshape(len(batch), 3, -1)
        a, b, c = out[:, 1], out[:, 2], out[:, 0] - out[:, 1] * self.center[0] - out[:, 2] * self.center[1]
        cen = batch.polys.centroids()  # relative to the slice centre: no cancellation
        at_cen = out[:, 0] + out[:, 1] * cen[:, :1] + out[:, 2] * cen[:, 1:]
        affine = torch.cat([torch.stack([a, b, c], -1), at_cen[..., None]], -1).cpu()
        verts = (batch.polys.verts + self.center).cpu()
        polys = Polygons(verts, batch.polys.offsets.cpu(), batch.polys.labels.cpu())
        codes = torch.cat(batch.codes, 1) if batch.codes else torch.zeros(len(batch), 0, dtype=torch.uint8)
        return Batch(polys, {0: affine}, [codes.cpu()])

    def _collect(self, done: list[Batch], seconds: float) -> EngineResult:
        polys = Polygons.cat([b.polys for b in done])
        return EngineResult(
            verts=polys.verts.numpy(),
            offsets=polys.offsets.numpy(),
            labels=polys.labels.numpy(),
            affine=torch.cat([b.values[0][..., :3] for b in done]).numpy(),
            centroid_outputs=torch.cat([b.values[0][..., 3] for b in done]).numpy(),
            codes=torch.cat([b.codes[0] for b in done]).numpy(),
            layers=self.layers,
            seconds=seconds,
        )


class _SideLog:
    """For every piece, the side of each line that crossed its original polygon.

    A shared linked list: an entry is (line, side in {-1, 0, 1}, previous entry),
    and ``head[p]`` is the newest entry of piece p, so children share their
    ancestors' entries.  Sides are recorded when a cut is made or a line is found
    not to cross a piece, with the same classification the cuts use.
    """

    def __init__(self, n: int, device):
        self.head = torch.full((n,), -1, dtype=torch.int64, device=device)
        self.line, self.side, self.prev = [], [], []
        self.size = 0

    def add(self, piece: torch.Tensor, line: torch.Tensor, side: torch.Tensor) -> None:
        """Record ``(line, side)`` (E,) for ``piece`` (E,), sorted by piece."""
        if not piece.numel():
            return
        idx = self.size + torch.arange(piece.numel(), device=piece.device)
        chained = torch.zeros_like(piece, dtype=torch.bool)
        chained[1:] = piece[1:] == piece[:-1]
        self.prev.append(torch.where(chained, idx - 1, self.head[piece]))
        self.line.append(line)
        self.side.append(side.to(torch.int8))
        last = torch.ones_like(chained)
        last[:-1] = ~chained[1:]
        self.head[piece[last]] = idx[last]
        self.size += piece.numel()

    def read(self, head: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All entries of the pieces with newest entries ``head``: (piece, line, side)."""
        if not self.size:
            empty = head.new_zeros(0)
            return empty, empty, empty.to(torch.int8)
        line, side, prev = torch.cat(self.line), torch.cat(self.side), torch.cat(self.prev)
        piece = torch.arange(head.numel(), device=head.device)
        out = []
        cur = head
        while piece.numel():
            live = cur >= 0
            piece, cur = piece[live], cur[live]
            out.append((piece, line[cur], side[cur]))
            cur = prev[cur]
        return tuple(torch.cat(parts) for parts in zip(*out))


def _split_all(polys: Polygons, pair_poly, pair_lines, pair_tol, pair_labels, check=None):
    """Split every polygon by all the lines paired with it.

    pair_poly: (L,) sorted polygon index of each line; pair_lines (L, 3); pair_tol (L,);
    pair_labels (L, 2).  Each round cuts every piece by its first remaining line,
    then keeps for each new piece only the remaining lines that still cross it
    (a binary space partition).  Returns the pieces, the (n,) polygon each came
    from, and (piece, line, side) records: the side of every piece w.r.t. every
    line of its polygon (0 where the piece lies on the line within tolerance).
    ``check(n)`` is called with the number of pieces after each round.
    """
    dev = polys.verts.device
    pieces, origin = polys, torch.arange(len(polys), device=dev)
    log = _SideLog(len(polys), dev)
    done_polys, done_origin, done_head = [], [], []
    line_of = torch.arange(pair_poly.numel(), device=dev)  # pair -> line row
    while pair_poly.numel():
        first = torch.ones_like(pair_poly, dtype=torch.bool)
        first[1:] = pair_poly[1:] != pair_poly[:-1]
        active = pair_poly[first]
        is_active = torch.zeros(len(pieces), dtype=torch.bool, device=dev)
        is_active[active] = True
        if active.numel() < len(pieces):
            done_polys.append(pieces.mask(~is_active))
            done_origin.append(origin[~is_active])
            done_head.append(log.head[~is_active])

        chosen = line_of[first]
        res = cut(pieces.mask(is_active), pair_lines[chosen], pair_tol[chosen], pair_labels[chosen])
        children = Polygons.cat([res.pos, res.neg])
        child_parent = torch.cat([res.pos_parent, res.neg_parent])  # index into active
        log.head = log.head[active][child_parent]
        n_pos = len(res.pos)
        log.add(torch.arange(len(children), device=dev), chosen[child_parent],
                torch.where(torch.arange(len(children), device=dev) < n_pos, 1, -1))
        pos_child = torch.full_like(active, -1)
        neg_child = torch.full_like(active, -1)
        pos_child[res.pos_parent] = torch.arange(n_pos, device=dev)
        neg_child[res.neg_parent] = torch.arange(n_pos, len(children), device=dev)

        rest = ~first
        slot = torch.searchsorted(active, pair_poly[rest])
        rest_lines = line_of[rest]
        cand_piece = torch.cat([pos_child[slot], neg_child[slot]])
        cand_line = torch.cat([rest_lines, rest_lines])
        valid = cand_piece >= 0
        cand_piece, cand_line = cand_piece[valid], cand_line[valid]
        order = torch.sort(cand_piece, stable=True).indices
        cand_piece, cand_line = cand_piece[order], cand_line[order]
        has_pos, has_neg = sides(children, cand_piece, pair_lines[cand_line], pair_tol[cand_line])
        keep = has_pos & has_neg
        settled = ~keep
        log.add(cand_piece[settled], cand_line[settled], has_pos[settled].to(torch.int8) - has_neg[settled].to(torch.int8))
        pair_poly, line_of = cand_piece[keep], cand_line[keep]

        origin = origin[active][child_parent]
        pieces = children
        if check is not None:
            check(len(pieces) + sum(len(p) for p in done_polys))
    done_polys.append(pieces)
    done_origin.append(origin)
    done_head.append(log.head)
    return Polygons.cat(done_polys), torch.cat(done_origin), log.read(torch.cat(done_head))
