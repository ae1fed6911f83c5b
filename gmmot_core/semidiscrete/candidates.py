"""Which Diracs can cut a cell: a grid of bins, rings of a nearby diagram, rescues."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gmmot_core.semidiscrete.clip import clip_rounds, first_true, half_planes

# candidates per cell in the rescue against every Dirac (after the ball filter)
RESCUE_KEEP = 64


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


def block_candidates(y, w, grid: Grid, active=None):
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
    ``sqrt(c)`` when ``c > D^2``).

    Inert Diracs (``active [N]`` False) lie in no bin and do not count in the bound."""
    n = y.shape[0]
    g, cap, r, _ = grid
    on = jnp.ones((n,), bool) if active is None else active
    lo = jnp.min(jnp.where(on[:, None], y, jnp.inf), 0)
    h = jnp.maximum((jnp.max(jnp.where(on[:, None], y, -jnp.inf), 0) - lo) / g, 1e-12)
    cell = jnp.clip(jnp.floor((y - lo) / h).astype(jnp.int32), 0, g - 1)  # [N, 2]
    key = jnp.where(on, cell[:, 0] * g + cell[:, 1], g * g)  # inert: past the last bin
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
    wmax = jax.ops.segment_max(
        jnp.where(on, w, -jnp.inf), cc[:, 0] * gc + cc[:, 1], num_segments=gc * gc
    )  # [Gc^2]
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


def next_to(lab, count, c, a):
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
    found, before, after = next_to(every, every_count, p, q)
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
        has, b2, a2 = next_to(every, every_count, lab, me)
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


def subset_sizes(n: int, top: int) -> list[int]:
    """Static sizes for working on a marked subset of ``n`` rows: 64, 512, 4096, ...
    while twice the size fits under ``top``, then ``top`` (each at most ``n``). Each size
    is a compiled copy of the work: steps of 8 (not 4) cut the copies by one at N = 1000
    to 5000 for the same warm steps (benchmarks/NOTES.md)."""
    sizes, s = [], 64
    while 2 * s <= top:
        sizes.append(s)
        s *= 8
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

    branches = [none, *map(on, sizes), many]
    which = jnp.where(marked == 0, 0, 1 + jnp.sum(marked > jnp.asarray(sizes)))
    if none is many:  # one branch for both: every branch is compiled, a copy is not free
        branches, which = branches[1:], jnp.where(marked == 0, len(sizes), which - 1)
    return jax.lax.switch(which, branches, operand)


def rescue(y, w, sel, r2, state, active=None):
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
    if active is not None:
        near = near & active[None, :]
    k = min(RESCUE_KEEP, n)
    cols, upto = first_true(near, k)
    cand_k = jnp.where(cols < n, cols, -1)  # [m, k]: the near Diracs, -1 padded

    def few():
        a, b, _ = half_planes(y, w, rr, cand_k, active)
        return clip_rounds(poly, a, b, cand_k)[:2]

    def every():
        cand = jnp.where(live[:, None], jnp.arange(n)[None, :], -1)
        a, b, _ = half_planes(y, w, rr, cand, active)
        return clip_rounds(poly, a, b, cand)[:2]

    new, o = jax.lax.cond(jnp.any(upto[:, -1] > k), every, few)
    return (
        verts.at[sel].set(new[0], mode="drop"),
        labels.at[sel].set(new[1], mode="drop"),
        count.at[sel].set(new[2], mode="drop"),
        over | o,
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
        has, prv, nxt = next_to(lab, count, c, a)
        return (c < 0) | (has & ((prv == b) | (nxt == b)))

    bad = live & ~(meets(p, me, lab) & meets(lab, me, p))
    marked = jnp.any(bad, 1)
    for c in (p, lab):
        marked = marked.at[jnp.where(bad & (c >= 0), c, n)].set(True, mode="drop")
    return marked
