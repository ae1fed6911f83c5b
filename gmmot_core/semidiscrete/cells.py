"""Laguerre (power) cells in a box, built independently with static shapes.

Cell ``i`` of Diracs ``y [N, 2]`` with weights ``w [N]`` is
``L_i = {x in box : |x - y_i|^2 - w_i <= |x - y_j|^2 - w_j for all j}``. The box is
clipped, deepest cut first, by every candidate half-plane that cuts it. Candidates are
every Dirac for small N, else the Diracs in nearby bins (certified by a bound on all
others), or the ring of a nearby diagram. Polygons are padded to ``max_vertices``;
each edge carries the index of the neighbour across it. Running out of a size is
flagged, never silently truncated.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gmmot_core.semidiscrete.candidates import (
    Grid,
    block_candidates,
    by_marked,
    default_grid,
    inconsistent_cells,
    rescue,
    ring_candidates,
)
from gmmot_core.semidiscrete.clip import clip_rounds, half_planes
from gmmot_core.semidiscrete.sizes import Sizes
from gmmot_core.semidiscrete.status import (
    OVERFLOW_BINS,
    OVERFLOW_RING,
    OVERFLOW_VERTICES,
    RING_MISS,
    STACKED,
    UNCERTIFIED,
)

REUSE_WIDTH = 16  # cells of at most this many edges - 1 are reused from a nearby diagram

KEEP = 32

BOX_SIDES = jnp.array([-2, -3, -4, -5], jnp.int32)  # labels of the bottom, right, top, left


class Cells(NamedTuple):
    """Padded cell polygons (counter-clockwise): ``vertices [N, V, 2]``, ``labels [N, V]``
    (what lies across edge t -> t+1: a Dirac index, or a side of the box, -2 bottom,
    -3 right, -4 top, -5 left; -1 past ``count``), ``count [N]``, ``status`` (bitmask)."""

    vertices: jax.Array
    labels: jax.Array
    count: jax.Array
    status: jax.Array


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


def _reuse_or_clip(y, w, lo, hi, hint, a, b, ring, poly0, active=None):
    """Cells reused from the diagram of ``hint`` where they fit (:func:`_reuse`); the
    others clipped by the ring candidates: a subset of static size
    (:func:`by_marked`) up to half of them (measured at N = 5000: most trials far
    from the last diagram change 1300-2500 cells), else all."""
    n, v = poly0[1].shape
    lo, hi = jnp.asarray(lo, y.dtype), jnp.asarray(hi, y.dtype)
    poly, fit = _reuse(y, w, lo, hi, hint, a, b, v)
    if active is not None:  # an inert cell is emptied by the caller
        fit = fit | ~active

    def some(sel, poly):
        m = sel.shape[0]
        rr = jnp.where(sel < n, sel, 0)
        live = (sel < n)[:, None]
        sub, over, _ = clip_rounds(
            jax.tree.map(lambda x: x[:m], poly0),
            a[rr],
            b[rr],
            jnp.where(live, ring[rr], -1),
            jnp.where(live, hint[rr], -1),
        )
        new = tuple(x.at[sel].set(s, mode="drop") for x, s in zip(poly, sub, strict=True))
        return new, over

    def every(_poly):
        return clip_rounds(poly0, a, b, ring, hint)[:2]

    def none(poly):
        return poly, jnp.asarray(False)

    return by_marked(~fit, max(64, n // 2), some, none, every, poly)


def _boxes(lo, hi, m: int, v: int, dtype):
    """``m`` copies of the box as padded polygons (vertices ``[m, v, 2]``, labels, counts)."""
    box = jnp.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]], dtype)
    verts0 = jnp.zeros((v, 2), dtype).at[:4].set(box)
    return (
        jnp.broadcast_to(verts0, (m, v, 2)),
        jnp.full((m, v), -1, jnp.int32).at[:, :4].set(BOX_SIDES),
        jnp.full((m,), 4, jnp.int32),
    )


def repair_cells(y, w, lo, hi, cells: Cells, sel, width: int, active=None):
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
    a, b, _ = half_planes(y, w, rr, cand, active)
    poly0 = _boxes(lo, hi, sel.shape[0], v, y.dtype)
    (vs, ls, cs), over, _ = clip_rounds(poly0, a, b, cand, hint)
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


def _empty_inert(verts, labels, count, active):
    """The polygons with the rows of inert Diracs (``active [N]`` False) emptied."""
    if active is None:
        return verts, labels, count
    return (
        jnp.where(active[:, None, None], verts, 0.0),
        jnp.where(active[:, None], labels, -1),
        jnp.where(active, count, 0),
    )


def power_cells(
    y,
    w,
    lo,
    hi,
    max_vertices: int = 32,
    grid: Grid | None = None,
    hint=None,
    ring=None,
    active=None,
    reuse: bool = True,
) -> Cells:
    """Laguerre cells of ``y [N, 2]``, ``w [N]`` clipped to the box ``lo``-``hi``.

    All pairs (``grid.bins = 0``): each cell is clipped by every half-plane that cuts it
    (:func:`clip_rounds`), which is exact by construction. With a grid, candidates are
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

    ``active [N]`` (default all): inert Diracs (False) own no cell and cut none, so the
    other cells are those of the active Diracs alone (padding to a static size).
    ``reuse``: with a ring and a hint, the hint's cells that still fit are kept
    (:func:`_reuse_or_clip`); False clips every cell (a smaller program).
    """
    n = y.shape[0]
    grid = default_grid(n) if grid is None else grid
    rows = jnp.arange(n)
    poly0 = _boxes(lo, hi, n, max_vertices, y.dtype)
    everyone = lambda m: jnp.broadcast_to(rows[None, :], (m, n))  # noqa: E731
    miss = jnp.asarray(False)
    if ring is not None:
        a, b, stacked = half_planes(y, w, rows, ring, active)
        if hint is None or not reuse:
            (verts, labels, count), over, _ = clip_rounds(poly0, a, b, ring, hint)
        else:
            (verts, labels, count), over = _reuse_or_clip(
                y, w, lo, hi, hint, a, b, ring, poly0, active
            )
        verts, labels, count = _empty_inert(verts, labels, count, active)
        miss = ~_tiles(verts, count, jnp.asarray(lo, y.dtype), jnp.asarray(hi, y.dtype))
        uncertified = bin_over = jnp.asarray(False)
    elif grid.bins == 0:
        cand = everyone(n)
        a, b, stacked = half_planes(y, w, rows, cand, active)
        (verts, labels, count), over, cut_on = clip_rounds(poly0, a, b, cand, hint, keep=KEEP)
        verts, labels, count = _empty_inert(verts, labels, count, active)
        (verts, labels, count), over = jax.lax.cond(
            jnp.any(cut_on),
            lambda p: clip_rounds(p[0], a, b, cand)[:2],
            lambda p: p,
            ((verts, labels, count), over),
        )
        uncertified = jnp.asarray(False)
        bin_over = jnp.asarray(False)
    else:
        cand, d_out, bin_over = block_candidates(y, w, grid, active)
        a, b, stacked = half_planes(y, w, rows, cand, active)
        (verts, labels, count), over, cut_on = clip_rounds(poly0, a, b, cand, hint, keep=KEEP)
        verts, labels, count = _empty_inert(verts, labels, count, active)
        vmask = jnp.arange(max_vertices)[None, :] < count[:, None]
        r2 = jnp.max(jnp.where(vmask, jnp.sum((verts - y[:, None]) ** 2, -1), 0.0), 1)
        bad = (~((d_out > 0) & (d_out**2 > r2)) | cut_on) & (count > 0)
        m = min(grid.rescue, n)
        sel = jnp.nonzero(bad, size=m, fill_value=n)[0]
        uncertified = jnp.sum(bad) > m
        if m > 0:
            verts, labels, count, over = jax.lax.cond(
                jnp.any(bad),
                lambda s: rescue(y, w, sel, r2, s, active),
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


# a ring diagram that misses a cut is repaired cell by cell when at most N / REPAIR_SHARE
# cells are marked (measured at N = 5000 on the tutorial target: most misses mark 5-450
# cells, a few far trials over 1000)
REPAIR_SHARE = 8


def near_cells(
    y,
    w,
    lo,
    hi,
    sizes: Sizes,
    labels,
    fallback: bool = True,
    repeats: int = 3,
    ring=None,
    active=None,
):
    """Cells of ``(y, w)`` from the neighbours of a nearby diagram (``labels [N, V]``;
    ``ring``: ``ring_candidates(labels, sizes.ring)`` when already at hand).

    Where those do not tile the box, the cells found (which contain the true ones, so
    their neighbours are real near-neighbours) seed a wider ring, up to ``repeats``
    times; then, with ``fallback``, the candidate grid. A miss that remains is flagged
    RING_MISS, and OVERFLOW_RING when a ring was truncated."""

    def build(labels, ring=None, around=False, reuse=True):
        if ring is None:
            ring = ring_candidates(labels, sizes.ring, around)
        ring, more = ring
        cells = power_cells(
            y,
            w,
            lo,
            hi,
            sizes.max_vertices,
            sizes.grid,
            labels,
            ring=ring,
            active=active,
            reuse=reuse,
        )
        return cells, more

    def missed(c):
        return (c.status & RING_MISS) != 0

    def again(s):
        # a cell that the ring cells left empty is empty (they contain the true ones):
        # its neighbours are lost, and no widening finds them; a Newton trial with it
        # is rejected anyway
        cells, _, k = s
        empty = cells.count == 0
        return missed(cells) & (k < repeats) & ~jnp.any(empty if active is None else empty & active)

    n = y.shape[0]

    def widen(s):
        # the cells around unconfirmed vertices (where cuts were missed, as a rule) rebuilt
        # alone from the widened ring, when they are few; else every cell
        cells, _, k = s

        def every(c):  # none marked (yet the box is not tiled), or too many: rare, so
            # every cell is clipped (a reuse switch inside this one compiled 4x the code)
            return build(c.labels, around=True, reuse=False)

        cells, more = by_marked(
            inconsistent_cells(cells.labels),
            max(64, n // REPAIR_SHARE),
            lambda sel, c: repair_cells(y, w, lo, hi, c, sel, sizes.ring, active=active),
            every,
            every,
            cells,
        )
        return cells, more, k + 1

    cells, more = build(labels, ring)
    if repeats:
        # behind a cond: a while loop costs ~6 ms at N = 5000 even when it does not turn
        # (XLA:CPU copies its carry), and most diagrams need no widening
        cells, more = jax.lax.cond(
            again((cells, more, 0)),
            lambda c: jax.lax.while_loop(again, widen, (*c, jnp.asarray(0)))[:2],
            lambda c: c,
            (cells, more),
        )
    cells = cells._replace(status=cells.status | jnp.where(missed(cells) & more, OVERFLOW_RING, 0))
    if not fallback:
        return cells
    return jax.lax.cond(
        missed(cells),
        lambda: power_cells(y, w, lo, hi, sizes.max_vertices, sizes.grid, labels, active=active),
        lambda: cells,
    )


def labelled_cells(y, w, lo, hi, max_vertices: int, labels, active=None) -> Cells:
    """The cells of a solved diagram ``(y, w)`` from its own labels ``[N, V]`` alone: a
    convex cell is the box cut by the half-planes of its edges, so clipping by exactly
    the neighbours across them rebuilds it (one clip per edge, no candidate search).
    A row with no edge is an empty cell; its Dirac cuts no other cell (it is nearer to no
    point than they are), so it is left out like an inert one (``active [N]`` False).
    RING_MISS when the cells do not tile the box (the labels were not this diagram's);
    :func:`near_cells` is then the builder to call."""
    cand = jnp.where(labels >= 0, labels, -1).astype(jnp.int32)
    owns = jnp.any(labels != -1, 1)
    active = owns if active is None else active & owns
    return power_cells(y, w, lo, hi, max_vertices, ring=cand, active=active)


def solved_cells(y, w, lo, hi, sizes: Sizes, labels, active=None):
    """The cells of a solved diagram ``(y, w)`` from its own labels ``[N, V]``: all pairs
    (clipped first by those neighbours) when ``sizes.grid`` says so, else
    :func:`near_cells`."""
    if sizes.grid.bins == 0:
        return power_cells(y, w, lo, hi, sizes.max_vertices, sizes.grid, labels, active=active)
    return near_cells(y, w, lo, hi, sizes, labels, active=active)
