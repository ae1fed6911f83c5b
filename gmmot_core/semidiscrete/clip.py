"""Clipping a convex polygon by half-planes, deepest cut first, in rounds."""

from __future__ import annotations

import jax
import jax.numpy as jnp

# deepest-cut rounds over all candidates before the ones still cutting are compacted
# (on uniform clouds a median of 7 and at most ~40 of ~50 remain after 5 rounds)
FULL_ROUNDS = 5


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


def half_planes(y, w, rows, cand, active=None):
    """Half-planes ``a . x <= b`` of cells ``rows [M]`` against candidates ``cand [M, C]``
    (``-1`` = none): ``a = y_j - y_i``, ``b = (|a|^2 + w_i - w_j) / 2 + a . y_i``. Self,
    padding and inert Diracs (``active [N]`` False) never cut (``a = 0, b = inf``); a
    stacked pair has ``a = 0`` and cuts everything when ``w_i < w_j``. Also whether a
    stacked pair exists."""
    n = y.shape[0]
    jj = jnp.clip(cand, 0, n - 1)
    yi = y[rows][:, None, :]
    a = y[jj] - yi
    none = (cand < 0) | (cand == rows[:, None])
    if active is not None:
        none = none | ~active[jj] | ~active[rows][:, None]
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


def first_true(mask, k: int):
    """Columns of the first ``k`` true entries of each row of ``mask [M, C]`` (``C`` where
    a row has fewer), and the running count of true entries ``[M, C]`` (its last column:
    how many each row has). A binary search per slot, no scatter (slow on CPU)."""
    upto = jnp.cumsum(mask, 1, dtype=jnp.int32)
    slots = jnp.arange(1, k + 1, dtype=jnp.int32)
    cols = jax.vmap(lambda row: jnp.searchsorted(row, slots, side="left"))(upto)
    return cols.astype(jnp.int32), upto


def clip_rounds(poly, a, b, cand, hint=None, keep: int = 0):
    """Clip the polygons ``poly`` (``[M, V, 2]``, labels, counts) by every candidate
    half-plane (``a [M, C, 2]``, ``b [M, C]``, labels ``cand``) that cuts them, exactly.

    ``hint [M, H]`` (Dirac indices, -1 = none), e.g. the neighbours of a nearby diagram,
    are clipped by first, one column per round. Then each round measures how deep every
    unused candidate cuts (the polygon's support function in its direction, minus ``b``,
    over ``|a|``) and clips by the deepest: like quickhull, deepest cuts reach the final
    cell in few rounds. A candidate that misses a polygon misses every later, smaller
    one, so the loop ends when none cuts, after at most ``C`` rounds. Both kinds of round
    are one loop with one clip (each clip in the program is compiled code of its own).

    ``keep > 0`` (and ``< C``): after :data:`FULL_ROUNDS` rounds, the candidates that
    still cut each polygon (a handful: the rest were dropped by the first deep cuts) are
    compacted to ``keep`` columns and the rounds go on over those alone, which makes a
    round ``C / keep`` times cheaper. A polygon with more than ``keep`` is returned as it
    is then, and marked ``truncated`` (it contains its cell; callers finish it).
    Returns the polygons, whether one ran out of vertices and ``truncated [M]``."""
    m, c = b.shape
    v = poly[0].shape[1]
    hint = None if hint is None or hint.shape[1] == 0 else hint
    col = jnp.arange(c)[None, :]
    norm = jnp.sqrt(jnp.sum(a**2, -1))
    norm = jnp.where(norm > 0, norm, 1.0)
    used = jnp.zeros((m, c), bool)
    slots = 0  # rounds that clip by a hint column
    if hint is not None:
        cols, ok = _columns(cand, hint)
        used = jnp.any((col[:, None, :] == cols[..., None]) & ok[..., None], 1)
        slots = jnp.max(jnp.where(ok, jnp.arange(hint.shape[1]) + 1, 0), initial=0)

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

    def depth_after(r, poly, used, deep):
        # measured only once the hint's rounds are done
        if hint is None:
            return depth(poly, used)
        return jax.lax.cond(r >= slots, depth, lambda *_: deep, poly, used)

    def cond(s):
        return (s[4] < slots) | (jnp.any(s[2] > -jnp.inf) & (s[4] <= c + slots))

    def body(s):
        poly, used, deep, over, r = s
        p = jnp.argmax(deep, 1)  # [M]
        has = jnp.any((col == p[:, None]) & (deep > -jnp.inf), 1)
        if hint is not None:
            t = jnp.minimum(r, hint.shape[1] - 1)
            p = jnp.where(r < slots, cols[:, t], p)
            has = jnp.where(r < slots, ok[:, t], has)
        used = used | ((col == p[:, None]) & has[:, None])
        poly, o = _clip_by(poly, a, b, cand, p, has)
        return poly, used, depth_after(r + 1, poly, used, deep), over | o, r + 1

    start = (poly, used, depth_after(0, poly, used, jnp.full(b.shape, -jnp.inf, b.dtype)))
    start = (*start, jnp.asarray(False), jnp.asarray(0))
    if 0 < keep < c:
        poly, _, deep, over, _ = jax.lax.while_loop(
            lambda s: cond(s) & (s[4] < FULL_ROUNDS + slots), body, start
        )
        live = deep > -jnp.inf
        cols, upto = first_true(live, keep)
        some = cols < c
        cols = jnp.minimum(cols, c - 1)
        a_k = jnp.where(some[..., None], jnp.take_along_axis(a, cols[..., None], 1), 0.0)
        b_k = jnp.where(some, jnp.take_along_axis(b, cols, 1), jnp.inf)
        cand_k = jnp.where(some, jnp.take_along_axis(cand, cols, 1), -1)
        poly, o, _ = clip_rounds(poly, a_k, b_k, cand_k)
        return poly, over | o, upto[:, -1] > keep
    poly, _, _, over, _ = jax.lax.while_loop(cond, body, start)
    return poly, over, jnp.zeros((m,), bool)
