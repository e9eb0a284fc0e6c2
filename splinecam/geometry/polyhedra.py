"""Ragged batches of convex polyhedra (torch, float64, any device) cut by planes.

A batch of P polyhedra holds, for polyhedron p, the vertices ``verts[offsets[p]:offsets[p + 1]]``
(in no particular order) and the faces ``face_offsets[p]:face_offsets[p + 1]``.  Face f lies on the
plane ``planes[f] = (a, b, c, d)``: its polyhedron is where ``a*x + b*y + c*z + d >= 0``; it carries
``face_units[f]``, e.g. the (layer, unit) whose plane made it, or :data:`BORDER`.  Each vertex's
``incidence`` is a bit mask of the faces (local indices 0..62 of its polyhedron) it lies on; two
vertices span an edge when they share two faces.  A plane splits a polyhedron only when vertices lie
strictly on both sides; on-plane vertices go to both pieces, so no piece is a zero-volume sliver, and
faces left with fewer than three vertices are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from . import compiled, compiled3d, linesplit
from .cut import Cut
from .linesplit import LineSplit, run_compiled, split_torch
from .polygons import BORDER, RaggedCells, offsets_from_counts, ragged_arange

__all__ = ["MAX_FACES", "Polyhedra", "Sections", "cut_polyhedra", "plane_sides", "polyhedra_sides", "sections",
           "split_polyhedra", "split_polyhedra_at_breakpoints"]

MAX_FACES = compiled3d.MAX_FACES  # faces one polyhedron may have (one bit each in an int64 incidence mask)
_TOO_MANY_FACES = (f"a cell with more than {MAX_FACES} faces: not supported (a network with fewer units per layer, "
                   "or a smaller volume, keeps cells simpler).")
_PIECE_BYTES = compiled3d.PIECE_BYTES  # bytes one piece holds during a split (its vertices, faces and indices)
_BLOCK_ELEMENTS = 1 << 24  # vertex-by-function evaluations held at once (128 MiB in float64)
_ANGLE_SPAN = 8.0  # > 2 pi: sort keys ``group * span + angle`` keep groups apart


@dataclass
class Polyhedra(RaggedCells):
    """A batch of convex polyhedra.

    verts: (N, 3) float; offsets: (P + 1,) int64; incidence: (N,) int64 face bit masks;
    planes: (F, 4) float, inside where >= 0; face_offsets: (P + 1,) int64; face_units: (F, 2) int64.
    """

    verts: torch.Tensor
    offsets: torch.Tensor
    incidence: torch.Tensor
    planes: torch.Tensor
    face_offsets: torch.Tensor
    face_units: torch.Tensor
    _owner: torch.Tensor | None = field(default=None, repr=False, compare=False)

    dim = 3  # chart coordinates of the states of its cells
    piece_bytes = _PIECE_BYTES  # what one piece holds during a split (the run's memory plan reads it)

    @property
    def face_counts(self) -> torch.Tensor:
        """(P,) number of faces of each polyhedron."""
        return self.face_offsets[1:] - self.face_offsets[:-1]

    def select(self, index: torch.Tensor) -> tuple["Polyhedra", torch.Tensor]:
        """Polyhedra ``index`` (any order), and the (N',) source vertex of each new vertex."""
        counts, fcounts = self.counts[index], self.face_counts[index]
        poly, pos = ragged_arange(counts)
        source = self.offsets[:-1][index][poly] + pos
        fpoly, fpos = ragged_arange(fcounts)
        fsource = self.face_offsets[:-1][index][fpoly] + fpos
        return Polyhedra(self.verts[source], offsets_from_counts(counts), self.incidence[source], self.planes[fsource],
                         offsets_from_counts(fcounts), self.face_units[fsource], poly), source

    def mask(self, keep: torch.Tensor) -> "Polyhedra":
        """The polyhedra where ``keep`` (P,) bool holds, in order."""
        return self.select(torch.nonzero(keep).flatten())[0]

    @staticmethod
    def cat(parts: list["Polyhedra"]) -> "Polyhedra":
        return Polyhedra(torch.cat([p.verts for p in parts]), offsets_from_counts(torch.cat([p.counts for p in parts])),
                         torch.cat([p.incidence for p in parts]), torch.cat([p.planes for p in parts]),
                         offsets_from_counts(torch.cat([p.face_counts for p in parts])),
                         torch.cat([p.face_units for p in parts]))

    @staticmethod
    def from_planes(planes, dtype=torch.float64, device=None, rtol: float = 1e-9) -> "Polyhedra":
        """One bounded convex polyhedron ``{x: planes[:, :3] @ x + planes[:, 3] >= 0}`` (planes (F, 4));
        its faces carry :data:`BORDER` and their index among ``planes`` (redundant planes are dropped)."""
        h = np.asarray(planes, dtype=np.float64)
        h = h / np.linalg.norm(h[:, :3], axis=1, keepdims=True)
        pts = _plane_vertices(h, rtol)
        scale = max(1.0, float(np.abs(pts).max()))
        on = np.abs(pts @ h[:, :3].T + h[:, 3]) <= rtol * scale * 8
        faces = np.flatnonzero(on.sum(0) >= 3)
        if len(faces) > MAX_FACES:
            raise ValueError(f"a polytope with {len(faces)} faces: at most {MAX_FACES} are supported.")
        bits = (on[:, faces].astype(np.int64) << np.arange(len(faces))).sum(1)
        units = np.stack([np.full(len(faces), BORDER), faces], 1)
        t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        return Polyhedra(t(pts).to(dtype), t(np.array([0, len(pts)])), t(bits), t(h[faces]).to(dtype),
                         t(np.array([0, len(faces)])), t(units))

    @staticmethod
    def single(planes: torch.Tensor) -> "Polyhedra":
        """The one polyhedron bounded by the border planes (F, 4) (see :meth:`from_planes`)."""
        return Polyhedra.from_planes(planes.cpu().numpy(), planes.dtype, planes.device)

    def measure(self) -> torch.Tensor:
        """(P,) volumes (the cell interface's measure)."""
        return self.volumes()

    def extremes(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Max and min over each polyhedron's vertices of its affine functions ``maps`` (P, 4, U)
        (rows: value at the origin, d/dx, d/dy, d/dz): two (P, U)."""
        h = self.homogeneous_padded()[..., [3, 0, 1, 2]]
        hi, lo = [], []
        step = max(1, _BLOCK_ELEMENTS // max(1, h.shape[1] * maps.shape[2]))
        for s in range(0, len(self), step):
            z = torch.bmm(h[s : s + step], maps[s : s + step])
            hi.append(z.amax(1))
            lo.append(z.amin(1))
        if not hi:
            return maps.new_zeros(0, maps.shape[2]), maps.new_zeros(0, maps.shape[2])
        return torch.cat(hi), torch.cat(lo)

    def centroids(self) -> torch.Tensor:
        """(P, 3) mean of each polyhedron's vertices (a point strictly inside)."""
        sums = torch.zeros(len(self), 3, dtype=self.verts.dtype, device=self.verts.device)
        return sums.index_add_(0, self.owner(), self.verts) / self.counts[:, None].to(self.verts.dtype)

    def bounding_boxes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(P, 3) lower and (P, 3) upper corners of each polyhedron's bounding box."""
        owner = self.owner()[:, None].expand(-1, 3)
        lo = torch.full((len(self), 3), torch.inf, dtype=self.verts.dtype, device=self.verts.device)
        return lo.scatter_reduce(0, owner, self.verts, "amin"), (-lo).scatter_reduce(0, owner, self.verts, "amax")

    def homogeneous_padded(self) -> torch.Tensor:
        """(P, Vmax, 4) rows ``(x, y, z, 1)``; short polyhedra repeat their first vertex."""
        counts = self.counts
        vmax = int(counts.max()) if len(self) else 0
        col = torch.arange(vmax, device=self.verts.device)
        pts = self.verts[self.offsets[:-1, None] + torch.where(col < counts[:, None], col, 0)]
        return torch.cat([pts, torch.ones_like(pts[..., :1])], dim=-1)

    def faces(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The face polygons: (M,) vertex indices and (F + 1,) offsets; face f's vertices
        ``index[offsets[f]:offsets[f + 1]]`` in counter-clockwise order seen from outside."""
        owner = self.owner()
        width = int(self.face_counts.max()) if len(self) else 0
        bits = (self.incidence[:, None] >> torch.arange(width, device=owner.device)) & 1
        vert, local = torch.nonzero(bits, as_tuple=True)
        face = self.face_offsets[:-1][owner[vert]] + local
        normals = -self.planes[face, :3]  # outward
        order = _ring_order(self.verts[vert], face, normals, len(self.planes))
        counts = torch.bincount(face, minlength=len(self.planes))
        return vert[order], offsets_from_counts(counts)

    def volumes(self) -> torch.Tensor:
        """(P,) volumes (tetrahedra from each vertex mean over the faces' fans)."""
        return self._tetrahedra()[0]

    def volume_centroids(self) -> torch.Tensor:
        """(P, 3) centres of mass."""
        vol, moment = self._tetrahedra()
        return moment / vol[:, None]

    def _tetrahedra(self) -> tuple[torch.Tensor, torch.Tensor]:
        index, offsets = self.faces()
        fcount = offsets[1:] - offsets[:-1]
        face, pos = ragged_arange(fcount, index.numel())
        nxt = torch.where(pos + 1 < fcount[face], torch.arange(1, index.numel() + 1, device=face.device),
                          offsets[:-1][face])
        poly = ragged_arange(self.face_counts, len(self.planes))[0][face]
        cen = self.centroids()
        c = cen[poly]
        fcen = torch.zeros(len(self.planes), 3, dtype=c.dtype, device=c.device).index_add_(0, face, self.verts[index])
        fc = fcen[face] / fcount[face, None].to(c.dtype) - c
        a, b = self.verts[index] - c, self.verts[index[nxt]] - c
        tet = torch.linalg.det(torch.stack([fc, a, b], 1)).abs() / 6
        vol = torch.zeros(len(self), dtype=c.dtype, device=c.device).index_add_(0, poly, tet)
        moment = torch.zeros(len(self), 3, dtype=c.dtype, device=c.device).index_add_(0, poly, tet[:, None] * (fc + a + b) / 4)
        return vol, moment + vol[:, None] * cen


def _plane_vertices(h: np.ndarray, rtol: float) -> np.ndarray:
    """(V, 3) vertices of the bounded polytope ``h[:, :3] @ x + h[:, 3] >= 0``: every feasible
    intersection of three planes, duplicates removed."""
    f = len(h)
    i, j, k = np.array([c for c in _triples(f)]).T.reshape(3, -1) if f >= 3 else (np.zeros(0, int),) * 3
    a = np.stack([h[i, :3], h[j, :3], h[k, :3]], 1)
    ok = np.abs(np.linalg.det(a)) > 1e-12
    pts = np.linalg.solve(a[ok], -np.stack([h[i, 3], h[j, 3], h[k, 3]], 1)[ok][..., None])[..., 0]
    scale = max(1.0, float(np.abs(pts).max())) if len(pts) else 1.0
    pts = pts[(pts @ h[:, :3].T + h[:, 3] >= -rtol * scale * 8).all(1)]
    if len(pts) < 4 or np.linalg.matrix_rank(pts - pts.mean(0), tol=rtol * scale * 8) < 3:
        raise ValueError("the planes bound no polytope with volume: give the faces of a bounded convex polytope.")
    keep = np.ones(len(pts), bool)
    for q in range(len(pts)):  # small: the corners of one polytope
        if keep[q]:
            near = np.abs(pts - pts[q]).max(1) <= rtol * scale * 8
            near[: q + 1] = False
            keep &= ~near
    return pts[keep]


def _triples(n: int):
    for i in range(n):
        for j in range(i + 1, n):
            for k in range(j + 1, n):
                yield i, j, k


def _ring_order(points: torch.Tensor, group: torch.Tensor, normals: torch.Tensor, n_groups: int) -> torch.Tensor:
    """(M,) permutation: points (M, 3) sorted by group (M,), each group's (coplanar, convex
    position) points counter-clockwise about its normal (M, 3) (the row of each point's group)."""
    counts = torch.bincount(group, minlength=n_groups).to(points.dtype)
    cen = torch.zeros(n_groups, 3, dtype=points.dtype, device=points.device).index_add_(0, group, points)
    rel = points - (cen / counts.clamp(min=1)[:, None])[group]
    axis = torch.zeros_like(normals)
    axis.scatter_(1, normals.abs().argmin(1, keepdim=True), 1.0)
    e1 = torch.linalg.cross(normals, axis)
    e2 = torch.linalg.cross(normals, e1)
    angle = torch.atan2((rel * e2).sum(1), (rel * e1).sum(1))
    return torch.argsort(group.to(points.dtype) * _ANGLE_SPAN + angle, stable=True)


def plane_sides(polys: Polyhedra, planes: torch.Tensor, tol: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each vertex's value (N,) on its polyhedron's plane (P, 4) and side (N,) in {-1, 0, 1}
    (0: within the polyhedron's tolerance ``tol`` (P,))."""
    owner = polys.owner()
    s = (polys.verts * planes[owner, :3]).sum(1) + planes[owner, 3]
    t = tol[owner]
    return s, (s > t).to(torch.int8) - (s < -t).to(torch.int8)


def polyhedra_sides(polys: Polyhedra, poly: torch.Tensor, planes: torch.Tensor, tol: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Where polyhedron ``poly[q]`` lies w.r.t. plane ``q`` (L, 4) with tolerance ``tol`` (L,), for L
    pairs: ``(has_pos, has_neg)`` (L,) bool, some vertex strictly on the positive / negative side."""
    pair, pos = ragged_arange(polys.counts[poly])
    vert = polys.offsets[:-1][poly][pair] + pos
    s = (polys.verts[vert] * planes[pair, :3]).sum(1) + planes[pair, 3]
    side = (s > tol[pair]).to(torch.int8) - (s < -tol[pair]).to(torch.int8)
    return _touches(side, pair, poly.numel())


def _touches(side: torch.Tensor, owner: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    count = torch.zeros(2, n, dtype=torch.int64, device=side.device)
    count[0].index_add_(0, owner, (side > 0).long())
    count[1].index_add_(0, owner, (side < 0).long())
    return count[0] > 0, count[1] > 0


@dataclass
class Sections:
    """Where each crossed polyhedron meets its plane: ``verts`` (M, 3) in ring order (counter-
    clockwise about the plane's normal), ``offsets`` (S + 1,), ``parent`` (S,) the polyhedron,
    ``edges`` (M, 2): the two polyhedron vertices whose edge the point lies on (equal for a vertex
    on the plane), ``incidence`` (M,) the faces of the polyhedron the point lies on."""

    verts: torch.Tensor
    offsets: torch.Tensor
    parent: torch.Tensor
    edges: torch.Tensor
    incidence: torch.Tensor


def _crossings(polys: Polyhedra, s: torch.Tensor, side: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The points where edges of the polyhedra cross their plane strictly: positions (C, 3),
    incidence (C,) and the edge (C, 2) (positive end first)."""
    owner = polys.owner()
    pos_v, neg_v = torch.nonzero(side > 0).flatten(), torch.nonzero(side < 0).flatten()
    n_neg = torch.bincount(owner[neg_v], minlength=len(polys))
    neg_start = offsets_from_counts(n_neg)[:-1]
    pair, k = ragged_arange(n_neg[owner[pos_v]])
    i = pos_v[pair]
    j = neg_v[neg_start[owner[i]] + k]
    shared = polys.incidence[i] & polys.incidence[j]
    edge = (shared & (shared - 1)) != 0  # two faces in common
    i, j, shared = i[edge], j[edge], shared[edge]
    t = s[i] / (s[i] - s[j])
    pts = polys.verts[i] + t[:, None] * (polys.verts[j] - polys.verts[i])
    return pts, shared, torch.stack([i, j], 1)


def sections(polys: Polyhedra, planes: torch.Tensor, tol: torch.Tensor) -> Sections:
    """The polygons where each polyhedron crossed by its plane (P, 4) (vertices strictly on both
    sides, tolerance ``tol`` (P,)) meets it."""
    s, side = plane_sides(polys, planes, tol)
    has_pos, has_neg = _touches(side, polys.owner(), len(polys))
    crossed = torch.nonzero(has_pos & has_neg).flatten()
    sub, src = polys.select(crossed)
    s, side = s[src], side[src]
    pts, inc, edges = _crossings(sub, s, side)
    on = torch.nonzero(side == 0).flatten()
    owner = torch.cat([sub.owner()[edges[:, 0]], sub.owner()[on]])
    verts = torch.cat([pts, sub.verts[on]])
    edges = torch.cat([edges, torch.stack([on, on], 1)])
    order = _ring_order(verts, owner, planes[crossed][owner, :3], len(sub))
    return Sections(verts[order], offsets_from_counts(torch.bincount(owner, minlength=len(sub))), crossed,
                    src[edges[order]], torch.cat([inc, sub.incidence[on]])[order])


def cut_polyhedra(polys: Polyhedra, planes: torch.Tensor, tol: torch.Tensor, units: torch.Tensor) -> Cut:
    """Cut polyhedron ``p`` by plane ``planes[p]`` (P, 4) for every p at once.

    tol: (P,) on-plane tolerances; units: (P, 2), the face units of the new faces.  A polyhedron
    with vertices strictly on both sides becomes two pieces; one that is not crossed goes whole
    to the side it touches (to ``pos`` when all its vertices are on the plane).
    """
    s, side = plane_sides(polys, planes, tol)
    has_pos, has_neg = _touches(side, polys.owner(), len(polys))
    crossed = has_pos & has_neg
    to_pos, to_neg = ~crossed & ~has_neg, ~crossed & has_neg
    split = torch.nonzero(crossed).flatten()
    sub, src = polys.select(split)
    s, side = s[src], side[src]
    pts, inc, edges = _crossings(sub, s, side)
    made = sub.owner()[edges[:, 0]]
    halves = [_half(sub, side * sign, pts, inc, made, planes[split] * sign, units[split]) for sign in (1, -1)]
    return Cut(Polyhedra.cat([polys.mask(to_pos), halves[0]]), torch.cat([torch.nonzero(to_pos).flatten(), split]),
               Polyhedra.cat([polys.mask(to_neg), halves[1]]), torch.cat([torch.nonzero(to_neg).flatten(), split]))


def _half(polys: Polyhedra, side: torch.Tensor, pts: torch.Tensor, inc: torch.Tensor, made: torch.Tensor,
          planes: torch.Tensor, units: torch.Tensor) -> Polyhedra:
    """The part of each crossed polyhedron where its plane (P, 4) is >= 0: its vertices with
    ``side >= 0`` and the crossing points ``pts`` (C, 3) of polyhedron ``made`` (C,); the new face
    (bit = the polyhedron's face count) carries ``units`` (P, 2); dead faces are dropped."""
    fcount = polys.face_counts
    if len(polys) and int(fcount.max()) >= MAX_FACES:
        raise ValueError(_TOO_MANY_FACES)
    owner = polys.owner()
    keep = side >= 0
    new_bit = torch.ones_like(fcount) << fcount
    inc_keep = polys.incidence[keep] | torch.where(side[keep] == 0, new_bit[owner[keep]], 0)
    vowner = torch.cat([owner[keep], made])
    order = torch.sort(vowner, stable=True).indices
    verts = torch.cat([polys.verts[keep], pts])[order]
    incidence = torch.cat([inc_keep, inc | new_bit[made]])[order]
    vowner = vowner[order]

    width = int(fcount.max()) + 1 if len(polys) else 1
    bits = (incidence[:, None] >> torch.arange(width, device=verts.device)) & 1
    on_face = torch.zeros(len(polys), width, dtype=torch.int64, device=verts.device).index_add_(0, vowner, bits)
    col = torch.arange(width, device=verts.device)
    live = (on_face >= 3) & (col <= fcount[:, None])
    new_pos = torch.cumsum(live.long(), 1) - 1
    incidence = ((bits * live[vowner]) << new_pos[vowner].clamp(min=0)).sum(1)

    fpoly, fpos = ragged_arange(fcount)
    old = polys.face_offsets[:-1][fpoly] + fpos
    face_poly = torch.cat([fpoly, torch.arange(len(polys), device=verts.device)])
    face_planes = torch.cat([polys.planes[old], planes])
    face_units = torch.cat([polys.face_units[old], units])
    face_col = torch.cat([fpos, fcount])
    alive = live[face_poly, face_col]
    order = torch.argsort(face_poly * width + face_col)
    alive = alive[order]
    return Polyhedra(verts, offsets_from_counts(torch.bincount(vowner, minlength=len(polys))), incidence,
                     face_planes[order][alive], offsets_from_counts(live.sum(1)), face_units[order][alive])


def split_polyhedra(cells: Polyhedra, region: torch.Tensor, planes: torch.Tensor, tol: torch.Tensor,
                    units: torch.Tensor, check=None, budget: int | None = None, use_compiled: bool | None = None
                    ) -> LineSplit:
    """The split of :func:`splinecam.geometry.split_cells` for polyhedra: each cell cut by its planes
    (L, 4) with ``region`` (L,) == its index, in the torch BSP loop of
    :func:`~splinecam.geometry.linesplit.split_torch`, or compiled in one bounded call
    (:func:`splinecam.geometry.compiled3d.split_by_planes`; ``use_compiled``: None picks it for
    float64 CPU tensors when numba is installed): the same pieces, in another order."""
    if use_compiled is None:
        use_compiled = _compiles(cells)
    if not use_compiled:
        return split_torch(cells, region, planes, tol, units, check, budget, cut_polyhedra, polyhedra_sides,
                           _PIECE_BYTES)
    n_planes = torch.bincount(region, minlength=len(cells))
    plane_offsets = torch.cat([n_planes.new_zeros(1), torch.cumsum(n_planes, 0)])
    cuts = torch.cat([planes, tol[:, None]], 1).to(torch.float64).contiguous()
    status, pieces, parent, side, rest, rest_parent = run_compiled(
        compiled3d.split_by_planes, *_arrays(cells), plane_offsets.numpy(), cuts.numpy(), units.contiguous().numpy(),
        linesplit.UNBOUNDED if budget is None else budget, 0, linesplit.WORK_PER_CALL)
    _check_status(status)
    pieces, parent, side = _polyhedra(*pieces), torch.from_numpy(parent), torch.from_numpy(side)
    if check is not None:
        check(len(pieces) + len(rest_parent))
    counts = n_planes[parent]
    starts = torch.cumsum(counts, 0) - counts  # the entries of each piece, one per plane of its cell

    def sides_of(sel):
        piece, k = ragged_arange(counts[sel])
        return piece, plane_offsets[parent[sel]][piece] + k, side[starts[sel][piece] + k]

    return LineSplit(pieces, parent, _polyhedra(*rest), torch.from_numpy(rest_parent), sides_of)


def split_polyhedra_at_breakpoints(cells: Polyhedra, z: torch.Tensor, breakpoints: torch.Tensor, extent: torch.Tensor,
                                   rtol: float, layer: int, budget: int):
    """The compiled split of an elementwise op over polyhedra, in one bounded call (see
    :func:`splinecam.geometry.compiled3d.breakpoint_split`): cells (R,) with unit maps z (R, 4, U),
    breakpoints (k,), the chart's half-sizes ``extent`` (3,).  Returns the finished pieces (n,),
    their cells (n,) and codes (n, U, k) bool, and the rest (q,) (to split again, in this order)
    and their cells (q,); None where it does not apply (no numba, not float64 on the CPU)."""
    if not (_compiles(cells) and z.device.type == "cpu" and z.dtype == torch.float64):
        return None
    status, pieces, parent, code, rest, rest_parent = run_compiled(
        compiled3d.breakpoint_split, *_arrays(cells), z.contiguous().numpy(), breakpoints.numpy(), rtol,
        extent.numpy(), layer, budget, linesplit.WORK_PER_CALL)
    _check_status(status)
    return (_polyhedra(*pieces), torch.from_numpy(parent), torch.from_numpy(code).reshape(len(parent), z.shape[2], -1),
            _polyhedra(*rest), torch.from_numpy(rest_parent))


def _compiles(cells: Polyhedra) -> bool:
    return compiled.AVAILABLE and cells.verts.device.type == "cpu" and cells.verts.dtype == torch.float64


def _arrays(cells: Polyhedra) -> tuple[np.ndarray, ...]:
    return (cells.verts.contiguous().numpy(), cells.offsets.numpy(), cells.incidence.numpy(),
            cells.planes.contiguous().numpy(), cells.face_offsets.numpy(), cells.face_units.contiguous().numpy())


def _polyhedra(verts, offsets, incidence, planes, face_offsets, face_units) -> Polyhedra:
    t = torch.from_numpy
    return Polyhedra(t(verts), t(offsets), t(incidence), t(planes), t(face_offsets), t(face_units))


def _check_status(status: int) -> None:
    if status == compiled3d.TOO_MANY_FACES:
        raise ValueError(_TOO_MANY_FACES)
