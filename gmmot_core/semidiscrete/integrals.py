"""Exact integrals of a pixel-constant density over Laguerre cells.

Mass, first moments about ``y_i``, the second moment ``int |x - y_i|^2 rho`` and the
density along every edge (which the Newton Hessian needs), by Green's theorem:
``int_P f = oint F dy`` with ``F(x, y) = int_{x_lo}^x f(t, y) dt``. Edges are split where
they cross grid lines, so every piece lies in one pixel, where ``F`` is a polynomial of
degree <= 3 along the piece and a 3-point Gauss rule is exact. The work is proportional
to the pixels under the cell boundaries; the pieces live in a flat array of static size
``budget`` (running out is flagged).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gmmot_core.semidiscrete.cells import Cells, power_cells
from gmmot_core.semidiscrete.density import ImageDensity
from gmmot_core.semidiscrete.sizes import Sizes
from gmmot_core.semidiscrete.status import OVERFLOW_PIECES


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
    # pixel sides from the image's counts (a padded array's extra pixels lie beyond hi)
    h = (hi - lo) / density.pixels
    last = density.pixels.astype(jnp.int32) - 1
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
        i = jnp.clip(jnp.floor((mid[:, 0] - lo[0]) / h[0]).astype(jnp.int32), 0, last[0])
        j = jnp.clip(jnp.floor((mid[:, 1] - lo[1]) / h[1]).astype(jnp.int32), 0, last[1])
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


def integrals(
    y, w, density: ImageDensity, sizes: Sizes, hint=None, ring=None, active=None
) -> CellIntegrals:
    """Cells of ``(y, w)`` and their exact integrals; ``hint [N, H]``: likely neighbours,
    ``ring [N, C]``: the only candidates, ``active [N]``: the Diracs that are not inert
    (see :func:`~.cells.power_cells`)."""
    cells = power_cells(
        y, w, density.lo, density.hi, sizes.max_vertices, sizes.grid, hint, ring=ring,
        active=active,
    )  # fmt: skip
    return cell_integrals(cells, y, density, sizes.pieces)
