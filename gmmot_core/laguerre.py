"""Laguerre (power) cells in a rectangle and their exact integrals for a pixel-constant density.

Cell ``i`` of Diracs ``y [N, 2]`` with weights ``w [N]`` is
``L_i = {x in box : |x - y_i|^2 - w_i <= |x - y_j|^2 - w_j for all j}``.

Cells are built independently (static shapes): the box is clipped, deepest cut first,
by every candidate half-plane that cuts it (each round tests all unused candidates
against all vertices). Candidates are every Dirac for small N, else the
Diracs in nearby bins, with a bound on all others that certifies the cell; the few cells
it does not certify are clipped against every Dirac. Running out of a size is flagged.
Polygons are padded to ``max_vertices``; each edge carries the index of
the neighbour across it (-1 on the box boundary).

Integrals (mass, first moments about ``y_i``, second moment ``int |x - y_i|^2 rho``, and
the density integrated along every edge, which the Newton Hessian needs) are exact for
a density constant on each pixel: by Green's theorem, ``int_P f = oint F dy`` with
``F(x, y) = int_{x_lo}^x f(t, y) dt``. Edges are split where they cross grid lines, so
every piece lies in one pixel, where ``F`` is a polynomial of degree <= 3 along the
piece and a 3-point Gauss rule is exact. The work is proportional to the pixels under
the cell boundaries, not to N x pixels. The pieces live in a flat array of static size
``budget``; running out is flagged, never silently truncated.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "CellIntegrals",
    "Cells",
    "Grid",
    "ImageDensity",
    "by_marked",
    "cell_integrals",
    "default_budget",
    "default_grid",
    "image_density",
    "inconsistent_cells",
    "power_cells",
    "repair_cells",
    "ring_candidates",
    "subset_sizes",
]

# status bits
OVERFLOW_VERTICES = 1  # a cell needed more than max_vertices vertices
UNCERTIFIED = 2  # more cells than grid.rescue were not certified by their block of bins
OVERFLOW_PIECES = 4  # the boundary walk needed more than `budget` pieces
STACKED = 8  # two Diracs share a position (their cells are ill-defined)
OVERFLOW_BINS = 64  # a bin of the candidate grid held more than its capacity
RING_MISS = 128  # cells built from ring candidates do not tile the box (a cut is missing)
REUSE_WIDTH = 16  # cells of at most this many edges - 1 are reused from a nearby diagram
OVERFLOW_RING = 256  # they missed one and a cell had more ring candidates than kept


# deepest-cut rounds over all candidates before the ones still cutting are compacted
# (on uniform clouds a median of 7 and at most ~40 of ~50 remain after 5 rounds)
FULL_ROUNDS = 5
KEEP = 32
# candidates per cell in the rescue against every Dirac (after the ball filter)
RESCUE_KEEP = 64

BOX_SIDES = jnp.array([-2, -3, -4, -5], jnp.int32)  # labels of the bottom, right, top, left


class ImageDensity(NamedTuple):
    """Density constant on each pixel of ``[lo_x, hi_x] x [lo_y, hi_y]`` (mass 1).

    ``rho [W, H]``: value on pixel ``(i, j)`` (axis 0 = x), per unit area.
    ``s0, s1, s2 [H, W + 1]``: row prefix sums ``sum_{i' < i} rho[i', j] int t^k dt`` over
    the columns left of column ``i`` (k = 0, 1, 2), for Green's ``F``.
    """

    rho: jax.Array
    lo: jax.Array
    hi: jax.Array
    s0: jax.Array
    s1: jax.Array
    s2: jax.Array


def image_density(values, lo=(0.0, 0.0), hi=(1.0, 1.0), dtype=None) -> ImageDensity:
    """A pixel-constant density from non-negative ``values [W, H]`` (axis 0 = x),
    normalised to total mass 1 on the rectangle ``lo``-``hi``."""
    dtype = dtype or (jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    v = np.asarray(values, np.float64)
    if v.ndim != 2 or min(v.shape) < 1:
        raise ValueError(f"density values must be a 2D array, got shape {v.shape}")
    if not np.all(np.isfinite(v)) or np.any(v < 0) or v.sum() <= 0:
        raise ValueError("density values must be finite, >= 0 and not all zero")
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    w, h = v.shape
    dx, dy = (hi - lo) / (w, h)
    rho = v / (v.sum() * dx * dy)
    xs = lo[0] + dx * np.arange(w + 1)
    col = [rho * (np.diff(xs ** (k + 1)) / (k + 1))[:, None] for k in range(3)]  # [W, H]
    pref = [np.concatenate([np.zeros((1, h)), np.cumsum(c, 0)], 0).T for c in col]  # [H, W+1]
    return ImageDensity(*(jnp.asarray(a, dtype) for a in (rho, lo, hi, *pref)))


class Cells(NamedTuple):
    """Padded cell polygons (counter-clockwise): ``vertices [N, V, 2]``, ``labels [N, V]``
    (what lies across edge t -> t+1: a Dirac index, or a side of the box, -2 bottom,
    -3 right, -4 top, -5 left; -1 past ``count``), ``count [N]``, ``status`` (bitmask)."""

    vertices: jax.Array
    labels: jax.Array
    count: jax.Array
    status: jax.Array


def _clip(poly, half_plane):
    """Clip one convex polygon (vertices [V,2], labels [V], count) by a.x <= b (label j).

    The kept vertices are the run of inside vertices around the deepest one; the output
    is that run, rotated to the front, then the two crossings (a gather, O(V): no
    scatter, which is slow on CPU). A vertex within round-off of the line counts as
    inside, so cutting along an existing edge adds no near-duplicate vertex; in a polygon
    made slightly non-convex by round-off, another inside run can only hold vertices
    within round-off of the line, and dropping it loses no measurable area."""
    verts, labels, n = poly
    a, b, j = half_plane
    v = verts.shape[0]
    idx = jnp.arange(v)
    valid = idx < n
    s = verts @ a - b
    slack = 8.0 * jnp.finfo(verts.dtype).eps * (jnp.abs(verts) @ jnp.abs(a) + jnp.abs(b))
    inside = s <= jnp.where(jnp.isfinite(slack), slack, 0.0)
    out = valid & ~inside
    any_out, any_in = jnp.any(out), jnp.any(valid & inside)
    nn = jnp.maximum(n, 1)
    deep = jnp.argmin(jnp.where(valid, s, jnp.inf))
    fwd = jnp.min(jnp.where(out, jnp.where(idx >= deep, idx - deep, idx - deep + nn), v))
    bwd = jnp.min(jnp.where(out, jnp.where(idx <= deep, deep - idx, deep - idx + nn), v))
    first = (deep - bwd + 1 + nn) % nn  # the run is first .. first + r - 1
    r = fwd + bwd - 1
    last, after, before = (first + r - 1) % nn, (first + r) % nn, (first + nn - 1) % nn

    def cross(p, q):
        d = s[p] - s[q]
        t = jnp.clip(s[p] / jnp.where(d == 0, 1.0, d), 0.0, 1.0)
        return verts[p] + t * (verts[q] - verts[p])

    src = (first + idx) % nn
    run = (idx < r)[:, None]
    out_v = jnp.where(run, verts[src], jnp.where((idx == r)[:, None], cross(last, after), 0.0))
    out_v = jnp.where((idx == r + 1)[:, None], cross(before, first), out_v)
    out_l = jnp.where(idx < r, labels[src], jnp.where(idx == r, j, labels[before]))
    total = r + 2
    keep = idx < total
    out_v = jnp.where(keep[:, None] & any_in, out_v, 0.0)
    out_l = jnp.where(keep & any_in, out_l, -1).astype(labels.dtype)
    count = jnp.where(any_in, jnp.minimum(total, v), 0).astype(n.dtype)
    clipped = (
        jnp.where(any_out, out_v, verts),
        jnp.where(any_out, out_l, labels),
        jnp.where(any_out, count, n),
    )
    return clipped, any_out & any_in & (total > v)


def default_budget(n: int, shape: tuple[int, int]) -> int:
    """A piece budget for ``n`` cells on a ``shape`` image: twice the pieces of a uniform
    diagram (about 6 edges per cell plus the grid crossings of a total perimeter of
    ``3.7 sqrt(n)``), rounded up to a multiple of 8192 (every piece of the budget is
    integrated, used or not: a power of two cost up to 2x); exceeding it is flagged."""
    pieces = 6.0 * n + 3.7 * np.sqrt(n) * 1.3 * max(shape) + 64
    return int(8192 * np.ceil(2.0 * pieces / 8192))


def _half_planes(y, w, rows, cand):
    """Half-planes ``a . x <= b`` of cells ``rows [M]`` against candidates ``cand [M, C]``
    (``-1`` = none): ``a = y_j - y_i``, ``b = (|a|^2 + w_i - w_j) / 2 + a . y_i``. Self and
    padding never cut (``a = 0, b = inf``); a stacked pair has ``a = 0`` and cuts
    everything when ``w_i < w_j``. Also whether a stacked pair exists."""
    n = y.shape[0]
    jj = jnp.clip(cand, 0, n - 1)
    yi = y[rows][:, None, :]
    a = y[jj] - yi
    none = (cand < 0) | (cand == rows[:, None])
    d2 = jnp.sum(a**2, -1)
    stacked = (d2 == 0) & ~none
    b = (d2 + w[rows][:, None] - w[jj]) / 2.0 + jnp.sum(a * yi, -1)
    a = jnp.where(none[..., None], 0.0, a)
    return a, jnp.where(none, jnp.inf, b), jnp.any(stacked)


def _columns(cand, labels):
    """Column of each of ``labels [M, H]`` (Dirac indices, -1 = none) in ``cand [M, C]``
    and whether it is there."""
    eq = (cand[:, None, :] == labels[:, :, None]) & (labels >= 0)[:, :, None]  # [M, H, C]
    return jnp.argmax(eq, -1), jnp.any(eq, -1)


def _clip_by(poly, a, b, cand, cols, ok):
    """Clip ``poly`` by the candidates in columns ``cols [M]`` where ``ok [M]``; flags
    a vertex overflow."""
    ap = jnp.take_along_axis(a, cols[:, None, None], 1)[:, 0]
    bp = jnp.where(ok, jnp.take_along_axis(b, cols[:, None], 1)[:, 0], jnp.inf)
    jp = jnp.take_along_axis(cand, cols[:, None], 1)[:, 0].astype(jnp.int32)
    poly, o = jax.vmap(_clip)(poly, (jnp.where(ok[:, None], ap, 0.0), bp, jp))
    return poly, jnp.any(o)


def _first_true(mask, k: int):
    """Columns of the first ``k`` true entries of each row of ``mask [M, C]`` (``C`` where
    a row has fewer), and the running count of true entries ``[M, C]`` (its last column:
    how many each row has). A binary search per slot, no scatter (slow on CPU)."""
    upto = jnp.cumsum(mask, 1, dtype=jnp.int32)
    slots = jnp.arange(1, k + 1, dtype=jnp.int32)
    cols = jax.vmap(lambda row: jnp.searchsorted(row, slots, side="left"))(upto)
    return cols.astype(jnp.int32), upto


def _clip_rounds(poly, a, b, cand, batch: int, hint=None, keep: int = 0):
    """Clip the polygons ``poly`` (``[M, V, 2]``, labels, counts) by every candidate
    half-plane (``a [M, C, 2]``, ``b [M, C]``, labels ``cand``) that cuts them, exactly.

    ``hint [M, H]`` (Dirac indices, -1 = none), e.g. the neighbours of a nearby diagram,
    are clipped by first, in one pass. Then each round measures how deep every unused
    candidate cuts (the polygon's support function in its direction, minus ``b``, over
    ``|a|``) and clips by the ``batch`` deepest: like quickhull, deepest cuts reach the
    final cell in few rounds. A candidate that misses a polygon misses every later,
    smaller one, so the loop ends when none cuts, after at most ``C`` rounds.

    ``keep > 0`` (and ``< C``): after :data:`FULL_ROUNDS` rounds, the candidates that
    still cut each polygon (a handful: the rest were dropped by the first deep cuts) are
    compacted to ``keep`` columns and the rounds go on over those alone, which makes a
    round ``C / keep`` times cheaper. A polygon with more than ``keep`` is returned as it
    is then, and marked ``truncated`` (it contains its cell; callers finish it).
    Returns the polygons, whether one ran out of vertices and ``truncated [M]``."""
    m, c = b.shape
    v = poly[0].shape[1]
    col = jnp.arange(c)[None, :]
    norm = jnp.sqrt(jnp.sum(a**2, -1))
    norm = jnp.where(norm > 0, norm, 1.0)
    over = jnp.asarray(False)
    used = jnp.zeros((m, c), bool)
    if hint is not None:
        cols, ok = _columns(cand, hint)
        used = jnp.any((col[:, None, :] == cols[..., None]) & ok[..., None], 1)
        slots = jnp.max(jnp.where(ok, jnp.arange(hint.shape[1]) + 1, 0), initial=0)

        def pre(t, s):
            poly, over = s
            poly, o = _clip_by(poly, a, b, cand, cols[:, t], ok[:, t])
            return poly, over | o

        poly, over = jax.lax.fori_loop(0, slots, pre, (poly, over))

    def depth(poly, used):
        # the support function: a max over the vertices in use (padding repeats vertex 0)
        verts, _, count = poly
        vidx = jnp.arange(v)[None, :]
        vv = jnp.take_along_axis(verts, jnp.where(vidx < count[:, None], vidx, 0)[..., None], 1)
        if c * v <= 4096:  # few candidates: all at once
            h = jnp.max(a[..., 0:1] * vv[:, None, :, 0] + a[..., 1:2] * vv[:, None, :, 1], -1)
        else:  # a running max, never an [M, C, V] array

            def step(t, h):
                return jnp.maximum(h, a[..., 0] * vv[:, t, 0:1] + a[..., 1] * vv[:, t, 1:2])

            h = jax.lax.fori_loop(0, jnp.max(count), step, jnp.full(b.shape, -jnp.inf, b.dtype))
        cut = (h > b) & ~used & (count > 0)[:, None]
        return jnp.where(cut, (h - b) / norm, -jnp.inf)

    def cond(s):
        return jnp.any(s[2] > -jnp.inf) & (s[4] <= c)

    def body(s):
        poly, used, deep, over, r = s
        for _ in range(batch):
            p = jnp.argmax(deep, 1)  # [M]
            hit = col == p[:, None]
            has = jnp.any(hit & (deep > -jnp.inf), 1)
            deep = jnp.where(hit, -jnp.inf, deep)
            used = used | (hit & has[:, None])
            poly, o = _clip_by(poly, a, b, cand, p, has)
            over = over | o
        return poly, used, depth(poly, used), over, r + 1

    if 0 < keep < c:
        poly, _, deep, over, _ = jax.lax.while_loop(
            lambda s: cond(s) & (s[4] < FULL_ROUNDS),
            body,
            (poly, used, depth(poly, used), over, jnp.asarray(0)),
        )
        live = deep > -jnp.inf
        cols, upto = _first_true(live, keep)
        some = cols < c
        cols = jnp.minimum(cols, c - 1)
        a_k = jnp.where(some[..., None], jnp.take_along_axis(a, cols[..., None], 1), 0.0)
        b_k = jnp.where(some, jnp.take_along_axis(b, cols, 1), jnp.inf)
        cand_k = jnp.where(some, jnp.take_along_axis(cand, cols, 1), -1)
        poly, o, _ = _clip_rounds(poly, a_k, b_k, cand_k, batch)
        return poly, over | o, upto[:, -1] > keep
    poly, _, _, over, _ = jax.lax.while_loop(
        cond, body, (poly, used, depth(poly, used), over, jnp.asarray(0))
    )
    return poly, over, jnp.zeros((m,), bool)


class Grid(NamedTuple):
    """Static sizes of the candidate search: ``bins`` per axis over the Diracs' bounding
    box, a block of ``(2 radius + 1)^2`` bins around each Dirac, at most ``cap`` Diracs
    in each of its rows of ``2 radius + 1`` bins; ``bins = 0`` means every Dirac is a
    candidate. ``rescue``: how many cells whose block of bins does not certify them are
    rebuilt against every Dirac."""

    bins: int
    cap: int
    radius: int
    rescue: int = 0


def default_grid(n: int) -> Grid:
    """About two Diracs per bin, blocks of 5 x 5 bins (which certify ~97% of uniform
    Voronoi cells), 24 slots per row of 5 bins (10 Diracs on average: a uniform cloud
    overflows one row in 10^4) and a rescue of ``n / 16`` cells; all pairs when that is
    as cheap."""
    g = int(np.sqrt(n / 2.0))
    return Grid(0, 0, 0) if n <= 256 or g < 7 else Grid(g, 24, 2, max(32, n // 16))


def _block_candidates(y, w, grid: Grid):
    """The Diracs in the block of bins around each ``y_i`` (``[N, C]``, -1 = none), a
    lower bound ``d_out [N]`` on the bisector distance of every Dirac outside the block
    and whether a row of the block held more than ``grid.cap`` Diracs.

    The Diracs are sorted by bin (row-major), so each of the block's ``2 r + 1`` rows of
    bins is one contiguous range of that order: ``C = (2 r + 1) cap`` slots, filled from
    the ranges without a per-bin table (a per-bin cap is hit far more often than a
    per-row one, and pads the candidates with far more empty slots).

    The bound is taken per coarse bin ``B`` (at most 16 x 16 over the same box): a Dirac
    ``j`` in ``B`` outside the block lies at least ``D = max(dist(y_i, B), R_i)`` away
    (``R_i`` the distance to the block's inner sides) with ``w_i - w_j >= c = w_i -
    max_B w``, so its bisector lies at least ``(D^2 + c) / (2 D)`` from ``y_i`` (or
    ``sqrt(c)`` when ``c > D^2``)."""
    n = y.shape[0]
    g, cap, r, _ = grid
    lo = jnp.min(y, 0)
    h = jnp.maximum((jnp.max(y, 0) - lo) / g, 1e-12)
    cell = jnp.clip(jnp.floor((y - lo) / h).astype(jnp.int32), 0, g - 1)  # [N, 2]
    key = cell[:, 0] * g + cell[:, 1]
    order = jnp.argsort(key)
    start = jnp.searchsorted(key[order], jnp.arange(g * g + 1), side="left")  # [G*G + 1]
    rows = cell[:, 0:1] + jnp.arange(-r, r + 1)[None, :]  # [N, 2r+1]
    row_ok = (rows >= 0) & (rows < g)
    rows = jnp.clip(rows, 0, g - 1) * g
    first = rows + jnp.maximum(cell[:, 1:2] - r, 0)
    stop = rows + jnp.minimum(cell[:, 1:2] + r, g - 1) + 1
    begin = start[first]
    length = jnp.where(row_ok, start[stop] - begin, 0)  # [N, 2r+1]
    slot = jnp.arange(cap)
    cand = jnp.where(
        slot[None, None, :] < length[..., None],
        order[jnp.clip(begin[..., None] + slot, 0, n - 1)],
        -1,
    ).reshape(n, -1)  # [N, C]
    blo = lo + (cell - r).astype(y.dtype) * h
    bhi = lo + (cell + r + 1).astype(y.dtype) * h
    gap_lo = jnp.where(cell - r <= 0, jnp.inf, y - blo)
    gap_hi = jnp.where(cell + r >= g - 1, jnp.inf, bhi - y)
    reach = jnp.min(jnp.minimum(gap_lo, gap_hi), 1)  # [N]
    # coarse bins: their boxes and the largest weight in each
    gc = min(g, 16)
    hc = h * (g / gc)
    cc = jnp.clip(jnp.floor((y - lo) / hc).astype(jnp.int32), 0, gc - 1)
    wmax = jax.ops.segment_max(w, cc[:, 0] * gc + cc[:, 1], num_segments=gc * gc)  # [Gc^2]
    ix = jnp.arange(gc)
    cx = jnp.repeat(ix, gc)
    cy = jnp.tile(ix, gc)
    box_lo = lo + jnp.stack([cx, cy], 1).astype(y.dtype) * hc  # [Gc^2, 2]
    gap = jnp.maximum(jnp.maximum(box_lo[None] - y[:, None], y[:, None] - box_lo[None] - hc), 0)
    dist = jnp.maximum(jnp.sqrt(jnp.sum(gap**2, -1)), reach[:, None])  # [N, Gc^2]
    c = w[:, None] - wmax[None, :]
    safe = jnp.where(jnp.isfinite(dist) & (dist > 0), dist, 1.0)
    bound = jnp.where(c > safe**2, jnp.sqrt(jnp.maximum(c, 0.0)), (safe**2 + c) / (2.0 * safe))
    bound = jnp.where(dist > 0, bound, -jnp.inf)
    bound = jnp.where(jnp.isfinite(dist) & jnp.isfinite(wmax)[None], bound, jnp.inf)
    d_out = jnp.min(bound, 1)
    return cand, d_out, jnp.any(length > cap)


def _reuse(y, w, lo, hi, labels, a, b, max_vertices: int):
    """Cells with the edge sequence of a nearby diagram (``labels [N, H]``), each vertex
    the meet of two consecutive edges' lines, and whether each is the exact cell for
    the candidate half-planes ``a [N, C, 2]``, ``b [N, C]``.

    A cell fits when every turn is a left turn of positive edges winding once (so the
    polygon is the intersection of its edges' half-planes) and every vertex satisfies
    every candidate and the box (so that intersection is inside all of them). Cells
    whose neighbours changed do not fit and must be clipped.
    """
    labels = labels[:, :REUSE_WIDTH]  # a cell with more edges is clipped instead
    n, h = labels.shape
    dt = y.dtype
    idx = jnp.arange(h)[None, :]
    count = jnp.sum(labels != -1, 1)
    live = idx < count[:, None]
    whole = jnp.all(labels != -1, 1)  # every slot in use: the cell may have been cut off
    j = jnp.clip(labels, 0, n - 1)
    ad = y[j] - y[:, None, :]
    bd = (jnp.sum(ad**2, -1) + w[:, None] - w[j]) / 2.0 + jnp.sum(ad * y[:, None, :], -1)
    side = jnp.clip(-2 - labels, 0, 3)
    sides_a = jnp.array([[0.0, -1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dt)
    sides_b = jnp.stack([-lo[1], hi[0], hi[1], -lo[0]]).astype(dt)
    dirac = labels >= 0
    la = jnp.where(dirac[..., None], ad, sides_a[side])  # [N, H, 2]
    lb = jnp.where(dirac, bd, sides_b[side])
    prev = jnp.where(idx == 0, count[:, None] - 1, idx - 1)
    nxt = jnp.where(idx + 1 < count[:, None], idx + 1, 0)
    pa = jnp.take_along_axis(la, prev[..., None], 1)
    pb = jnp.take_along_axis(lb, prev, 1)
    det = pa[..., 0] * la[..., 1] - pa[..., 1] * la[..., 0]
    dot = jnp.sum(pa * la, -1)
    ok_det = det > 64.0 * jnp.finfo(dt).eps * jnp.sqrt(jnp.sum(pa**2, -1) * jnp.sum(la**2, -1))
    safe = jnp.where(ok_det, det, 1.0)
    vx = (pb * la[..., 1] - pa[..., 1] * lb) / safe
    vy = (pa[..., 0] * lb - pb * la[..., 0]) / safe
    verts = jnp.stack([vx, vy], -1)  # vertex t: edges t-1 and t meet
    vn = jnp.take_along_axis(verts, nxt[..., None], 1)
    forward = jnp.sum((vn - verts) * jnp.stack([-la[..., 1], la[..., 0]], -1), -1) > 0
    turn = jnp.sum(jnp.where(live, jnp.arctan2(det, dot), 0.0), 1)
    shape_ok = jnp.all(~live | (ok_det & forward & (labels != jnp.arange(n)[:, None])), 1)
    shape_ok &= (count >= 3) & ~whole & (jnp.abs(turn - 2 * jnp.pi) < 1.0)
    vv = jnp.where(live[..., None], verts, verts[:, 0:1])  # padding repeats vertex 0
    reach = jnp.max(jnp.abs(vv), (1, 2))[:, None]
    tol = 64.0 * jnp.finfo(dt).eps
    hmax = jnp.max(a[..., 0:1] * vv[:, None, :, 0] + a[..., 1:2] * vv[:, None, :, 1], -1)
    inside = jnp.all(hmax - b <= tol * (jnp.sqrt(jnp.sum(a**2, -1)) * reach + jnp.abs(b)), 1)
    span = tol * jnp.maximum(jnp.max(jnp.abs(lo)), jnp.max(jnp.abs(hi)))
    inside &= jnp.all((vv >= lo - span) & (vv <= hi + span), (1, 2))
    pad = max_vertices - h
    if pad > 0:
        verts = jnp.pad(verts, ((0, 0), (0, pad), (0, 0)))
        labels = jnp.pad(labels, ((0, 0), (0, pad)), constant_values=-1)
        live = jnp.pad(live, ((0, 0), (0, pad)))
    else:
        verts, labels, live = (
            verts[:, :max_vertices],
            labels[:, :max_vertices],
            live[:, :max_vertices],
        )
    verts = jnp.where(live[..., None], verts, 0.0)
    poly = (
        verts,
        jnp.where(live, labels, -1).astype(jnp.int32),
        jnp.minimum(count, max_vertices).astype(jnp.int32),
    )
    return poly, shape_ok & inside


def _next_to(lab, count, c, a):
    """Where label ``a`` sits in cell ``c``'s cycle of labels (``lab [N, H]``, ``count``;
    ``c``, ``a`` index arrays of one shape ``S``): whether it is there, and the labels
    before and after it (each ``S``)."""
    row = lab[jnp.clip(c, 0, lab.shape[0] - 1)]  # S + [H]
    cnt = count[jnp.clip(c, 0, lab.shape[0] - 1)]
    hit = row == a[..., None]
    at = jnp.argmax(hit, -1)
    before = jnp.take_along_axis(row, jnp.where(at == 0, cnt - 1, at - 1)[..., None], -1)[..., 0]
    after = jnp.take_along_axis(row, jnp.where(at + 1 < cnt, at + 1, 0)[..., None], -1)[..., 0]
    return jnp.any(hit, -1), before, after


def ring_candidates(labels, width: int = 16, around: bool = False, rows=None):
    """Candidates from a nearby diagram: each cell's neighbours and the cells that an
    edge flip would make its neighbours.

    ``labels [N, V]`` (what lies across each edge; its first ``width`` slots are used)
    -> ``[N, C]`` Dirac indices (-1 = none; repeats are harmless), and whether a
    cell used every slot (then it may have had more). ``around`` adds, for each
    neighbour ``p``, the labels next to ``i`` in ``p``'s cycle. A vertex of cell ``i``
    where the edges facing ``p`` and ``q`` meet ends the edge ``p | q``; its other end meets a
    third cell ``l``, the label next to ``q`` in ``p``'s cycle (the one that is not
    ``i``). For weights or positions close enough to that diagram's, every new
    neighbour is such an ``l``; :func:`power_cells` checks that the cells tile the box.
    A cell empty in that diagram has no candidates (it stays the box, and is flagged):
    callers fall back to the grid there. ``rows [M]``: only those cells' candidates
    (``[M, C]``).
    """
    every = labels[:, :width].astype(jnp.int32)
    n, h = every.shape
    every_count = jnp.sum(every != -1, 1)
    rows = jnp.arange(n) if rows is None else rows
    lab, count = every[rows], every_count[rows]
    m = lab.shape[0]
    idx = jnp.arange(h)[None, :]
    prev = jnp.take_along_axis(lab, jnp.where(idx == 0, count[:, None] - 1, idx - 1), 1)
    # look the vertex up in a Dirac cell p next to it (p = the previous edge's label,
    # else this edge's), for the label q on its other side
    use_prev = prev >= 0
    p = jnp.where(use_prev, prev, lab)
    q = jnp.where(use_prev, lab, prev)
    ok = (p >= 0) & (idx < count[:, None])
    found, before, after = _next_to(every, every_count, p, q)
    found &= ok
    me = jnp.broadcast_to(rows[:, None].astype(jnp.int32), lab.shape)
    if around:  # both labels next to q: the diagram may be inconsistent
        flips = jnp.where(found[..., None], jnp.stack([before, after], -1), -1).reshape(m, 2 * h)
    else:  # one of them is i in a consistent diagram: the other is the flip
        flips = jnp.where(found, jnp.where(before == me, after, before), -1)
    parts = [lab, flips, _one_sided(every)[rows]]
    if around:
        # the cells next to i in each neighbour's cycle: in a diagram built from too few
        # candidates, where a neighbour met a cell that i missed
        has, b2, a2 = _next_to(every, every_count, lab, me)
        has &= lab >= 0
        parts.append(jnp.where(has[..., None], jnp.stack([b2, a2], -1), -1).reshape(m, 2 * h))
    ring = jnp.concatenate(parts, 1)
    return jnp.where((ring >= 0) & (ring != me[:, :1]), ring, -1), jnp.any(count >= h)


def _listed_back(lab):
    """``[N, H]``: whether the Dirac across each edge lists this cell back."""
    n = lab.shape[0]
    j = jnp.clip(lab, 0, n - 1)
    return jnp.any(lab[j] == jnp.arange(n)[:, None, None], -1) | (lab < 0)


def _one_sided(lab, slots: int = 4):
    """``[N, slots]``: Diracs that list a cell as a neighbour while it does not list them
    (what a cell built from too few candidates misses), -1 padded; a few may be lost to
    collisions, which only costs another widening."""
    n, h = lab.shape
    src = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32)[:, None], lab.shape)
    lone = ~_listed_back(lab)
    dst = jnp.where(lone, lab, n)  # out of range: dropped
    col = jnp.broadcast_to(jnp.arange(h)[None, :] % slots, lab.shape)
    return jnp.full((n, slots), -1, jnp.int32).at[dst, col].set(src, mode="drop")


def _tiles(verts, count, lo, hi):
    """Whether the polygons' areas add up to the box's (to round-off). Cells built from a
    subset of the half-planes contain the true cells, which tile the box, so this holds
    exactly when no cell misses a cut of positive area; what the round-off slack lets
    through is a sliver of area below ``256 sqrt(N) eps`` of the box."""
    n, v = count.shape[0], verts.shape[1]
    idx = jnp.arange(v)[None, :]
    nxt = jnp.where(idx + 1 < count[:, None], idx + 1, 0)
    p1 = jnp.take_along_axis(verts, nxt[..., None], 1)
    cross = verts[..., 0] * p1[..., 1] - p1[..., 0] * verts[..., 1]
    area = 0.5 * jnp.sum(jnp.where(idx < count[:, None], cross, 0.0))
    box = (hi[0] - lo[0]) * (hi[1] - lo[1])
    slack = 256.0 * np.sqrt(n) * jnp.finfo(verts.dtype).eps * box
    return jnp.abs(area - box) <= slack


def subset_sizes(n: int, top: int) -> list[int]:
    """Static sizes for working on a marked subset of ``n`` rows: 64, 256, 1024, ...
    while twice the size fits under ``top``, then ``top`` (each at most ``n``)."""
    sizes, s = [], 64
    while 2 * s <= top:
        sizes.append(s)
        s *= 4
    return sorted({min(n, m) for m in [*sizes, top]})


def by_marked(mask, top: int, some, none, many, operand):
    """``some(sel, operand)`` on the rows marked in ``mask [N]`` (``sel [m]``, padded with
    ``N``, for the smallest of :func:`subset_sizes` that holds them); ``none(operand)``
    when no row is marked, ``many(operand)`` when more than ``top`` are."""
    n = mask.shape[0]
    sizes = subset_sizes(n, top)
    marked = jnp.sum(mask)

    def on(m):
        return lambda x: some(jnp.nonzero(mask, size=m, fill_value=n)[0], x)

    which = jnp.where(marked == 0, 0, 1 + jnp.sum(marked > jnp.asarray(sizes)))
    return jax.lax.switch(which, [none] + [on(m) for m in sizes] + [many], operand)


def _reuse_or_clip(y, w, lo, hi, hint, a, b, ring, poly0, batch: int):
    """Cells reused from the diagram of ``hint`` where they fit (:func:`_reuse`); the
    others clipped by the ring candidates: a subset of static size
    (:func:`by_marked`) up to half of them (measured at N = 5000: most trials far
    from the last diagram change 1300-2500 cells), else all."""
    n, v = poly0[1].shape
    lo, hi = jnp.asarray(lo, y.dtype), jnp.asarray(hi, y.dtype)
    poly, fit = _reuse(y, w, lo, hi, hint, a, b, v)

    def some(sel, poly):
        m = sel.shape[0]
        rr = jnp.where(sel < n, sel, 0)
        live = (sel < n)[:, None]
        sub, over, _ = _clip_rounds(
            jax.tree.map(lambda x: x[:m], poly0),
            a[rr],
            b[rr],
            jnp.where(live, ring[rr], -1),
            batch,
            jnp.where(live, hint[rr], -1),
        )
        new = tuple(x.at[sel].set(s, mode="drop") for x, s in zip(poly, sub, strict=True))
        return new, over

    def every(_poly):
        return _clip_rounds(poly0, a, b, ring, batch, hint)[:2]

    def none(poly):
        return poly, jnp.asarray(False)

    return by_marked(~fit, max(64, n // 2), some, none, every, poly)


def _rescue(y, w, sel, r2, state, batch: int):
    """Finish the cells ``sel [m]`` (``n`` = none) against every Dirac.

    Only the Diracs whose bisector lies closer to ``y_i`` than the farthest vertex of the
    cell so far (``r2 [N]``: that distance squared) can still cut it; up to
    :data:`RESCUE_KEEP` of them per cell are gathered and clipped by. Where a cell has
    more, every Dirac is used for all of ``sel`` (exact, slower, rare)."""
    verts, labels, count, over = state
    n = y.shape[0]
    live = sel < n
    rr = jnp.where(live, sel, 0)
    poly = (verts[rr], labels[rr], count[rr])
    yi = y[rr]
    # bisector of i and j at distance d = (|y_j - y_i|^2 + w_i - w_j) / (2 |y_j - y_i|)
    # from y_i; it can cut the cell when d < r (always when d <= 0)
    diff = y[None, :, :] - yi[:, None, :]  # [m, N, 2]
    d2 = jnp.sum(diff**2, -1)
    num = d2 + w[rr][:, None] - w[None, :]
    near = (d2 > 0) & ((num <= 0) | (num**2 < 4.0 * r2[rr][:, None] * d2)) & live[:, None]
    k = min(RESCUE_KEEP, n)
    cols, upto = _first_true(near, k)
    cand_k = jnp.where(cols < n, cols, -1)  # [m, k]: the near Diracs, -1 padded

    def few():
        a, b, _ = _half_planes(y, w, rr, cand_k)
        return _clip_rounds(poly, a, b, cand_k, batch)[:2]

    def every():
        cand = jnp.where(live[:, None], jnp.arange(n)[None, :], -1)
        a, b, _ = _half_planes(y, w, rr, cand)
        return _clip_rounds(poly, a, b, cand, batch)[:2]

    new, o = jax.lax.cond(jnp.any(upto[:, -1] > k), every, few)
    return (
        verts.at[sel].set(new[0], mode="drop"),
        labels.at[sel].set(new[1], mode="drop"),
        count.at[sel].set(new[2], mode="drop"),
        over | o,
    )


def _boxes(lo, hi, m: int, v: int, dtype):
    """``m`` copies of the box as padded polygons (vertices ``[m, v, 2]``, labels, counts)."""
    box = jnp.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]], dtype)
    verts0 = jnp.zeros((v, 2), dtype).at[:4].set(box)
    return (
        jnp.broadcast_to(verts0, (m, v, 2)),
        jnp.full((m, v), -1, jnp.int32).at[:, :4].set(BOX_SIDES),
        jnp.full((m,), 4, jnp.int32),
    )


def inconsistent_cells(labels):
    """``[N]``: cells whose neighbours do not confirm one of their vertices. At a vertex
    of cell ``i`` between its edges facing ``p`` and ``q``, the three cells meet: ``p``
    lists ``i`` and ``q`` next to each other, and ``q`` lists ``p`` and ``i``. A cell that
    missed a cut has a vertex on the wrong side of it, which its neighbours (built with
    that cut) do not have; ``i``, ``p`` and ``q`` are all marked."""
    n, v = labels.shape
    lab = labels.astype(jnp.int32)
    count = jnp.sum(lab != -1, 1)
    idx = jnp.arange(v)[None, :]
    live = idx < count[:, None]
    p = jnp.take_along_axis(lab, jnp.where(idx == 0, count[:, None] - 1, idx - 1), 1)
    me = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32)[:, None], lab.shape)

    def meets(c, a, b):
        # whether a and b are consecutive in c's cycle (c a Dirac), else True
        has, prv, nxt = _next_to(lab, count, c, a)
        return (c < 0) | (has & ((prv == b) | (nxt == b)))

    bad = live & ~(meets(p, me, lab) & meets(lab, me, p))
    marked = jnp.any(bad, 1)
    for c in (p, lab):
        marked = marked.at[jnp.where(bad & (c >= 0), c, n)].set(True, mode="drop")
    return marked


def repair_cells(y, w, lo, hi, cells: Cells, sel, width: int, batch: int = 1):
    """Rebuild only the cells ``sel [M]`` (``N`` = none) of a ring diagram that does not
    tile the box, from the widened ring of its labels (:func:`ring_candidates` with
    ``around``), and check the tiling again. Returns the cells (RING_MISS as found
    now) and whether a cell used every ring slot."""
    n, v = cells.labels.shape
    live = sel < n
    rr = jnp.where(live, sel, 0)
    ring, more = ring_candidates(cells.labels, width, around=True, rows=rr)
    cand = jnp.where(live[:, None], ring, -1)
    hint = jnp.where(live[:, None], cells.labels[rr], -1)
    a, b, _ = _half_planes(y, w, rr, cand)
    poly0 = _boxes(lo, hi, sel.shape[0], v, y.dtype)
    (vs, ls, cs), over, _ = _clip_rounds(poly0, a, b, cand, batch, hint)
    verts = cells.vertices.at[sel].set(vs, mode="drop")
    labels = cells.labels.at[sel].set(ls, mode="drop")
    count = cells.count.at[sel].set(cs, mode="drop")
    miss = ~_tiles(verts, count, jnp.asarray(lo, y.dtype), jnp.asarray(hi, y.dtype))
    status = (
        (cells.status & ~RING_MISS)
        | jnp.where(over, OVERFLOW_VERTICES, 0)
        | jnp.where(miss, RING_MISS, 0)
    ).astype(jnp.int32)
    return Cells(verts, labels, count, status), more


def power_cells(
    y,
    w,
    lo,
    hi,
    max_vertices: int = 32,
    grid: Grid | None = None,
    hint=None,
    batch: int = 1,
    ring=None,
) -> Cells:
    """Laguerre cells of ``y [N, 2]``, ``w [N]`` clipped to the box ``lo``-``hi``.

    All pairs (``grid.bins = 0``): each cell is clipped by every half-plane that cuts it
    (:func:`_clip_rounds`), which is exact by construction. With a grid, candidates are
    the Diracs of the block of bins around ``y_i``; a cell is certified when the bound
    ``d_out`` on every Dirac outside the block exceeds ``r_i``, the largest distance
    from ``y_i`` to a vertex (those half-planes then hold the ball ``B(y_i, r_i)``, hence
    the cell). Up to ``grid.rescue`` uncertified cells are clipped further against every
    Dirac; more than that is flagged UNCERTIFIED. ``hint [N, H]``: likely neighbours
    (e.g. the labels of the diagram at nearby weights) to clip by first; any hint gives
    the same cells, a good one in fewer rounds.

    ``ring [N, C]`` (from :func:`ring_candidates`) replaces the grid: cells are clipped by
    those candidates only and RING_MISS is flagged unless the cells tile the box (then
    they are exact: each contains its true cell).
    """
    n = y.shape[0]
    grid = default_grid(n) if grid is None else grid
    rows = jnp.arange(n)
    poly0 = _boxes(lo, hi, n, max_vertices, y.dtype)
    everyone = lambda m: jnp.broadcast_to(rows[None, :], (m, n))  # noqa: E731
    miss = jnp.asarray(False)
    if ring is not None:
        a, b, stacked = _half_planes(y, w, rows, ring)
        if hint is None:
            (verts, labels, count), over, _ = _clip_rounds(poly0, a, b, ring, batch, hint)
        else:
            (verts, labels, count), over = _reuse_or_clip(
                y, w, lo, hi, hint, a, b, ring, poly0, batch
            )
        miss = ~_tiles(verts, count, jnp.asarray(lo, y.dtype), jnp.asarray(hi, y.dtype))
        uncertified = bin_over = jnp.asarray(False)
    elif grid.bins == 0:
        cand = everyone(n)
        a, b, stacked = _half_planes(y, w, rows, cand)
        (verts, labels, count), over, cut_on = _clip_rounds(
            poly0, a, b, cand, batch, hint, keep=KEEP
        )
        (verts, labels, count), over = jax.lax.cond(
            jnp.any(cut_on),
            lambda p: _clip_rounds(p[0], a, b, cand, batch)[:2],
            lambda p: p,
            ((verts, labels, count), over),
        )
        uncertified = jnp.asarray(False)
        bin_over = jnp.asarray(False)
    else:
        cand, d_out, bin_over = _block_candidates(y, w, grid)
        a, b, stacked = _half_planes(y, w, rows, cand)
        (verts, labels, count), over, cut_on = _clip_rounds(
            poly0, a, b, cand, batch, hint, keep=KEEP
        )
        vmask = jnp.arange(max_vertices)[None, :] < count[:, None]
        r2 = jnp.max(jnp.where(vmask, jnp.sum((verts - y[:, None]) ** 2, -1), 0.0), 1)
        bad = (~((d_out > 0) & (d_out**2 > r2)) | cut_on) & (count > 0)
        m = min(grid.rescue, n)
        sel = jnp.nonzero(bad, size=m, fill_value=n)[0]
        uncertified = jnp.sum(bad) > m
        if m > 0:
            verts, labels, count, over = jax.lax.cond(
                jnp.any(bad),
                lambda s: _rescue(y, w, sel, r2, s, batch),
                lambda s: s,
                (verts, labels, count, over),
            )
    status = (
        jnp.where(over, OVERFLOW_VERTICES, 0)
        | jnp.where(uncertified, UNCERTIFIED, 0)
        | jnp.where(stacked, STACKED, 0)
        | jnp.where(bin_over, OVERFLOW_BINS, 0)
        | jnp.where(miss, RING_MISS, 0)
    ).astype(jnp.int32)
    return Cells(verts, labels, count, status)


class CellIntegrals(NamedTuple):
    """Exact integrals per cell: ``mass [N]``, ``first [N, 2]`` = int (x - y_i) rho,
    ``second [N]`` = int |x - y_i|^2 rho; ``edge_mass [N, V]`` = int_edge rho ds and
    ``labels [N, V]`` the neighbour across each edge (as in :class:`Cells`);
    ``status`` (cells' status | OVERFLOW_PIECES)."""

    mass: jax.Array
    first: jax.Array
    second: jax.Array
    edge_mass: jax.Array
    labels: jax.Array
    status: jax.Array


def small_budget(budget: int) -> int:
    """The smaller of the two piece walks: 0.6 of ``budget`` in multiples of 4096 (the
    default budget is twice the pieces of a uniform diagram; measured diagrams of the
    tutorial target use 0.45-0.51 of it)."""
    return min(budget, int(4096 * np.ceil(0.6 * budget / 4096)))


def _expand(counts, budget: int):
    """Flat index space: piece t -> (owner, local index, valid); plus overflow flag. The
    owner of t is the number of ends <= t: a histogram of the ends, summed (a quarter of
    the time of a binary search per piece on XLA:CPU)."""
    ends = jnp.cumsum(counts)
    starts = ends - counts
    t = jnp.arange(budget)
    passed = jnp.zeros(budget, jnp.int32).at[ends].add(1, mode="drop")
    owner = jnp.minimum(jnp.cumsum(passed), counts.shape[0] - 1)
    return owner, t - starts[owner], t < ends[-1], ends[-1] > budget


def _crossings(u0, u1):
    """Grid lines strictly between u0 and u1 (grid units): their count [E] and
    ``param(r)``, the segment parameter in [0, 1] of the r-th one."""
    up = u1 >= u0
    count = jnp.where(up, jnp.ceil(u1) - jnp.floor(u0), jnp.ceil(u0) - jnp.floor(u1)) - 1
    first = jnp.where(up, jnp.floor(u0) + 1.0, jnp.ceil(u0) - 1.0)
    step = jnp.where(up, 1.0, -1.0)
    span = jnp.where(u1 == u0, 1.0, u1 - u0)

    def param(r):
        return (first + step * r - u0) / span

    return jnp.maximum(count, 0).astype(jnp.int32), param


def cell_integrals(cells: Cells, y, density: ImageDensity, budget: int) -> CellIntegrals:
    """Exact mass, moments and edge integrals of every cell (see the module docstring).

    The boundary walk runs on ``budget`` pieces, or on :func:`small_budget` of them when
    a bound on the pieces (each edge: 1 + its grid-line crossings) fits there (every
    piece of the walk is integrated, used or not)."""
    n, v = cells.labels.shape
    dt = cells.vertices.dtype
    lo, hi = density.lo, density.hi
    wdt, hgt = density.rho.shape
    h = (hi - lo) / jnp.array([wdt, hgt], dt)
    p0 = cells.vertices.reshape(n * v, 2)
    nxt = jnp.where(jnp.arange(v)[None, :] + 1 < cells.count[:, None], jnp.arange(v) + 1, 0)
    p1 = jnp.take_along_axis(cells.vertices, nxt[..., None], 1).reshape(n * v, 2)
    edge_ok = (jnp.arange(v)[None, :] < cells.count[:, None]).reshape(-1)

    # stage 1: split every edge at vertical grid lines
    g0, g1 = (p0 - lo) / h, (p1 - lo) / h
    cx, _ = _crossings(g0[:, 0], g1[:, 0])
    cx = jnp.where(edge_ok, cx + 1, 0)
    cy, _ = _crossings(g0[:, 1], g1[:, 1])
    bound = jnp.sum(cx) + jnp.sum(jnp.where(edge_ok, cy, 0))
    small = small_budget(budget)

    def walk(budget):
        e1, r1, ok1, over1 = _expand(cx, budget)
        last1 = r1 == cx[e1] - 1
        # parameters of piece r along its edge: [t(r-1), t(r)] with t(-1)=0, t(count)=1
        u0, u1 = g0[e1, 0], g1[e1, 0]
        _, param1 = _crossings(u0, u1)
        t_start = jnp.where(r1 == 0, 0.0, param1(r1.astype(dt) - 1.0))
        t_end = jnp.where(last1, 1.0, param1(r1.astype(dt)))
        a1 = p0[e1] + t_start[:, None] * (p1[e1] - p0[e1])
        b1 = p0[e1] + t_end[:, None] * (p1[e1] - p0[e1])

        # stage 2: split those pieces at horizontal grid lines
        q0, q1 = (a1[:, 1] - lo[1]) / h[1], (b1[:, 1] - lo[1]) / h[1]
        cy, _ = _crossings(q0, q1)
        cy = jnp.where(ok1, cy + 1, 0)
        e2, r2, ok2, over2 = _expand(cy, budget)
        last2 = r2 == cy[e2] - 1
        _, param2 = _crossings(q0[e2], q1[e2])
        s_start = jnp.where(r2 == 0, 0.0, param2(r2.astype(dt) - 1.0))
        s_end = jnp.where(last2, 1.0, param2(r2.astype(dt)))
        a = a1[e2] + s_start[:, None] * (b1[e2] - a1[e2])
        b = a1[e2] + s_end[:, None] * (b1[e2] - a1[e2])
        edge = e1[e2]
        cell = edge // v

        # each piece lies in one pixel: the one holding its midpoint
        mid = 0.5 * (a + b)
        i = jnp.clip(jnp.floor((mid[:, 0] - lo[0]) / h[0]).astype(jnp.int32), 0, wdt - 1)
        j = jnp.clip(jnp.floor((mid[:, 1] - lo[1]) / h[1]).astype(jnp.int32), 0, hgt - 1)
        rho = density.rho[i, j]
        xi = lo[0] + h[0] * i.astype(dt)
        s0, s1, s2 = density.s0[j, i], density.s1[j, i], density.s2[j, i]
        yc = y[cell]

        # 3-point Gauss-Legendre on [0, 1] (exact for the cubic integrands), unrolled: one
        # elementwise pass (a [T, 3, 4] stack and a dot over its 3 nodes cost 3x as much)
        nodes = (0.5 - 0.5 * np.sqrt(0.6), 0.5, 0.5 + 0.5 * np.sqrt(0.6))
        weights = (5.0 / 18.0, 8.0 / 18.0, 5.0 / 18.0)
        cxp, cyp = yc[:, 0], yc[:, 1]
        sums4 = [0.0, 0.0, 0.0, 0.0]
        for q, wq in zip(nodes, weights, strict=True):
            x = a[:, 0] + q * (b[:, 0] - a[:, 0])
            yy = a[:, 1] + q * (b[:, 1] - a[:, 1]) - cyp
            f_m = s0 + rho * (x - xi)
            f_t1 = s1 + rho * (x**2 - xi**2) / 2.0
            f_t2 = s2 + rho * (x**3 - xi**3) / 3.0
            f_x = f_t1 - cxp * f_m
            f_2 = f_t2 - 2.0 * cxp * f_t1 + (cxp**2 + yy**2) * f_m
            for k, f in enumerate((f_m, f_x, yy * f_m, f_2)):
                sums4[k] = sums4[k] + wq * f
        dy = (b[:, 1] - a[:, 1]) * ok2
        contrib = dy[:, None] * jnp.stack(sums4, -1)
        sums = jax.ops.segment_sum(contrib, cell, num_segments=n)
        length = jnp.sqrt(jnp.sum((b - a) ** 2, -1))
        edge_mass = jax.ops.segment_sum(rho * length * ok2, edge, num_segments=n * v)
        return sums, edge_mass, over1 | over2

    if small < budget:
        sums, edge_mass, over = jax.lax.cond(
            bound <= small, lambda: walk(small), lambda: walk(budget)
        )
    else:  # one walk: the two would be the same
        sums, edge_mass, over = walk(budget)
    status = cells.status | jnp.where(over, OVERFLOW_PIECES, 0).astype(jnp.int32)
    return CellIntegrals(
        mass=sums[:, 0],
        first=sums[:, 1:3],
        second=sums[:, 3],
        edge_mass=edge_mass.reshape(n, v),
        labels=cells.labels,
        status=status,
    )
