"""Laguerre (power) cells in a rectangle and their exact integrals for a pixel-constant density.

Cell ``i`` of Diracs ``y [N, 2]`` with weights ``w [N]`` is
``L_i = {x in box : |x - y_i|^2 - w_i <= |x - y_j|^2 - w_j for all j}``.

Cells are built independently (static shapes): the box is clipped by the half-planes of
the ``k`` candidates whose bisectors pass closest to ``y_i``; a certificate (the next
candidate's bisector lies beyond every vertex) says whether ``k`` was enough, else the
cell is flagged. Polygons are padded to ``max_vertices``; each edge carries the index of
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
    "ImageDensity",
    "cell_integrals",
    "default_budget",
    "image_density",
    "power_cells",
]

# status bits
OVERFLOW_VERTICES = 1  # a cell needed more than max_vertices vertices
UNCERTIFIED = 2  # k candidates may not have been enough for some cell
OVERFLOW_PIECES = 4  # the boundary walk needed more than `budget` pieces
STACKED = 8  # two Diracs share a position (their cells are ill-defined)


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
    """Padded cell polygons: ``vertices [N, V, 2]``, ``labels [N, V]`` (neighbour across
    edge t -> t+1, -1 = box), ``count [N]``, ``status`` (bitmask, see module)."""

    vertices: jax.Array
    labels: jax.Array
    count: jax.Array
    status: jax.Array


def _clip(poly, half_plane):
    """Clip one convex polygon (vertices [V,2], labels [V], count) by a.x <= b (label j)."""
    verts, labels, n = poly
    a, b, j = half_plane
    v = verts.shape[0]
    idx = jnp.arange(v)
    valid = idx < n
    nxt = jnp.where(idx + 1 < n, idx + 1, 0)
    s = verts @ a - b
    sn = s[nxt]
    inside, inside_n = s <= 0, sn <= 0
    denom = jnp.where(s - sn == 0, 1.0, s - sn)
    cross = verts + (s / denom)[:, None] * (verts[nxt] - verts)
    emit_v = valid & inside
    emit_x = valid & (inside != inside_n)
    cnt = emit_v.astype(jnp.int32) + emit_x.astype(jnp.int32)
    start = (jnp.cumsum(cnt) - cnt).astype(jnp.int32)
    drop = 2 * v
    pos_v = jnp.where(emit_v, start, drop)
    pos_x = jnp.where(emit_x, start + emit_v.astype(jnp.int32), drop)
    out = jnp.zeros((2 * v + 1, 2), verts.dtype).at[pos_v].set(verts).at[pos_x].set(cross)
    lab_x = jnp.where(inside, j, labels)  # leaving: the new edge lies on the cut line
    out_l = jnp.full((2 * v + 1,), -1, labels.dtype).at[pos_v].set(labels).at[pos_x].set(lab_x)
    total = jnp.sum(cnt).astype(jnp.int32)
    return (out[:v], out_l[:v], jnp.minimum(total, v)), total > v


def default_budget(n: int, shape: tuple[int, int], max_vertices: int = 32) -> int:
    """A piece budget for ``n`` cells on a ``shape`` image: the vertex slots plus about
    eight times the grid crossings of a uniform diagram (flagged when exceeded)."""
    crossings = 4.0 * np.sqrt(n) * 2.0 * max(shape)
    return int(2 ** np.ceil(np.log2(n * max_vertices + 8 * crossings)))


def _candidates(y, w, k):
    """The k + 1 smallest bisector distances from each y_i and their indices [N, k + 1]."""
    n = y.shape[0]
    diff = y[None, :, :] - y[:, None, :]  # [N, N, 2]: y_j - y_i
    d2 = jnp.sum(diff**2, -1)
    dist = jnp.sqrt(jnp.where(d2 > 0, d2, 1.0))
    d = (d2 + w[:, None] - w[None, :]) / (2.0 * dist)
    d = jnp.where(jnp.eye(n, dtype=bool), jnp.inf, d)
    d = jnp.where((d2 == 0) & ~jnp.eye(n, dtype=bool), -jnp.inf, d)  # stacked: always cut
    kk = min(k + 1, n)
    neg, idx = jax.lax.top_k(-d, kk)
    if kk < k + 1:
        pad = k + 1 - kk
        neg = jnp.concatenate([neg, jnp.full((n, pad), -jnp.inf, neg.dtype)], 1)
        idx = jnp.concatenate([idx, jnp.full((n, pad), -1, idx.dtype)], 1)
    stacked = jnp.any((d2 == 0) & ~jnp.eye(n, dtype=bool))
    return -neg, idx, stacked


def power_cells(y, w, lo, hi, k: int = 24, max_vertices: int = 32) -> Cells:
    """Laguerre cells of ``y [N, 2]``, ``w [N]`` clipped to the box ``lo``-``hi``."""
    n = y.shape[0]
    d, idx, stacked = _candidates(y, w, k)
    box = jnp.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]], y.dtype)
    verts0 = jnp.zeros((max_vertices, 2), y.dtype).at[:4].set(box)
    labels0 = jnp.full((max_vertices,), -1, jnp.int32)

    def one(yi, wi, cand):
        cj = jnp.clip(cand[:k], 0, n - 1)
        real = cand[:k] >= 0
        a = y[cj] - yi  # [k, 2]
        b = (jnp.sum(a**2, -1) + wi - w[cj]) / 2.0 + a @ yi
        a = jnp.where(real[:, None], a, 0.0)
        b = jnp.where(real, b, jnp.inf)

        def body(carry, hp):
            poly, over = carry
            poly, o = _clip(poly, hp)
            return (poly, over | o), None

        init = ((verts0, labels0, jnp.asarray(4, jnp.int32)), jnp.asarray(False))
        (poly, over), _ = jax.lax.scan(body, init, (a, b, cand[:k].astype(jnp.int32)))
        return poly, over

    (verts, labels, count), over = jax.vmap(one)(y, w, idx)
    # certificate: the (k+1)-th bisector lies beyond every vertex of the cell
    valid = jnp.arange(max_vertices)[None, :] < count[:, None]
    r = jnp.sqrt(jnp.max(jnp.where(valid, jnp.sum((verts - y[:, None]) ** 2, -1), 0.0), 1))
    certified = (d[:, k] > r) | (count == 0)
    status = (
        jnp.where(jnp.any(over), OVERFLOW_VERTICES, 0)
        | jnp.where(jnp.all(certified), 0, UNCERTIFIED)
        | jnp.where(stacked, STACKED, 0)
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


def _expand(counts, budget: int):
    """Flat index space: piece t -> (owner, local index, valid); plus overflow flag."""
    ends = jnp.cumsum(counts)
    starts = ends - counts
    t = jnp.arange(budget)
    owner = jnp.clip(jnp.searchsorted(ends, t, side="right"), 0, counts.shape[0] - 1)
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
    """Exact mass, moments and edge integrals of every cell (see the module docstring)."""
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

    # 3-point Gauss-Legendre on [0, 1] (exact for the cubic integrands)
    nodes = jnp.array([0.5 - 0.5 * np.sqrt(0.6), 0.5, 0.5 + 0.5 * np.sqrt(0.6)], dt)
    weights = jnp.array([5.0 / 18.0, 8.0 / 18.0, 5.0 / 18.0], dt)
    pts = a[:, None, :] + nodes[None, :, None] * (b - a)[:, None, :]  # [T, 3, 2]
    x, yy = pts[..., 0], pts[..., 1]
    rx = rho[:, None]
    xi_ = xi[:, None]
    f_m = s0[:, None] + rx * (x - xi_)
    f_t1 = s1[:, None] + rx * (x**2 - xi_**2) / 2.0
    f_t2 = s2[:, None] + rx * (x**3 - xi_**3) / 3.0
    cxp, cyp = yc[:, 0:1], yc[:, 1:2]
    f_x = f_t1 - cxp * f_m
    f_y = (yy - cyp) * f_m
    f_2 = f_t2 - 2.0 * cxp * f_t1 + cxp**2 * f_m + (yy - cyp) ** 2 * f_m
    dy = (b[:, 1] - a[:, 1]) * ok2
    quad = jnp.stack([f_m, f_x, f_y, f_2], -1)  # [T, 3, 4]
    contrib = dy[:, None] * jnp.einsum("tqc,q->tc", quad, weights)
    sums = jax.ops.segment_sum(contrib, cell, num_segments=n)
    length = jnp.sqrt(jnp.sum((b - a) ** 2, -1))
    edge_mass = jax.ops.segment_sum(rho * length * ok2, edge, num_segments=n * v)
    status = cells.status | jnp.where(over1 | over2, OVERFLOW_PIECES, 0).astype(jnp.int32)
    return CellIntegrals(
        mass=sums[:, 0],
        first=sums[:, 1:3],
        second=sums[:, 3],
        edge_mass=edge_mass.reshape(n, v),
        labels=cells.labels,
        status=status,
    )
