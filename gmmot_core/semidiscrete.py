"""Exact semi-discrete OT from Diracs to a pixel-constant density: damped Newton on the
Laguerre weights (Kitagawa-Merigot-Thibert) and W2^2 with its closed-form gradient.

W2^2 = sum_i int_{L_i} |x - y_i|^2 rho(x) dx (no 1/2 factor, as sdot), with the weights
``w`` solved so that every cell holds mass ``nu_i``. Its gradient in ``y_i`` is
``2 m_i (y_i - b_i)`` (``b_i`` the cell barycentre), so a Lloyd step ``y <- b`` is a
gradient step with learning rate ``1 / (2 m_i)``.

Static sizes (:class:`Sizes`: candidates per cell, vertices per cell, boundary pieces)
are chosen on the host. A jitted solve never truncates silently: it flags the size that
ran out, and :func:`solve_weights` re-runs with that size doubled, warm-started.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from gmmot_core.laguerre import (
    OVERFLOW_BINS,
    OVERFLOW_PIECES,
    OVERFLOW_VERTICES,
    STACKED,
    UNCERTIFIED,
    CellIntegrals,
    Grid,
    ImageDensity,
    cell_integrals,
    default_budget,
    default_grid,
    power_cells,
)

__all__ = [
    "EMPTY_CELL",
    "NOT_CONVERGED",
    "SIZE_BITS",
    "Sizes",
    "SolveResult",
    "cold_weights",
    "default_sizes",
    "grow_sizes",
    "integrals",
    "solve_weights",
    "w2",
]

NOT_CONVERGED = 16  # Newton stopped at its iteration cap or its line search failed
EMPTY_CELL = 32  # a cell holds no mass at the start (zero density under it): Newton cannot start
# fixed by larger sizes
SIZE_BITS = UNCERTIFIED | OVERFLOW_VERTICES | OVERFLOW_PIECES | OVERFLOW_BINS


class Sizes(NamedTuple):
    """Static sizes: ``max_vertices`` per cell, ``pieces`` in the boundary walk, the
    candidate ``grid`` (see :class:`~gmmot_core.laguerre.Grid`)."""

    max_vertices: int
    pieces: int
    grid: Grid


def default_sizes(n: int, shape: tuple[int, int]) -> Sizes:
    """Sizes that fit near-uniform weights; :func:`grow_sizes` enlarges what runs out."""
    return Sizes(32, default_budget(n, shape), default_grid(n))


def grow_sizes(sizes: Sizes, status: int, n: int) -> Sizes | None:
    """Enlarge every size whose status bit is set (None when nothing can grow): four times
    the rescued cells (all pairs once that covers every cell) when cells were not certified,
    twice the vertices, pieces or bin capacity on overflow."""
    v, p, grid = sizes
    if status & UNCERTIFIED and grid.bins:
        rescue = 4 * grid.rescue
        grid = Grid(0, 0, 0) if rescue >= n else grid._replace(rescue=rescue)
    if status & OVERFLOW_BINS and grid.bins:
        grid = grid._replace(cap=2 * grid.cap)
    if status & OVERFLOW_VERTICES:
        v = 2 * v
    if status & OVERFLOW_PIECES or v != sizes.max_vertices:
        p = 2 * p
    new = Sizes(v, p, grid)
    return None if new == sizes else new


class SolveResult(NamedTuple):
    """``weights [N]``, the cells' ``integrals`` at those weights, Newton ``iterations``,
    diagrams ``evaluations``, ``error`` = max |m_i - nu_i| and ``status`` (laguerre bits
    | NOT_CONVERGED | EMPTY_CELL); ``sizes`` used (set by :func:`solve_weights`)."""

    weights: jax.Array
    integrals: CellIntegrals
    iterations: jax.Array
    evaluations: jax.Array
    error: jax.Array
    status: jax.Array
    sizes: Sizes | None = None


def integrals(y, w, density: ImageDensity, sizes: Sizes, hint=None) -> CellIntegrals:
    """Cells of ``(y, w)`` and their exact integrals; ``hint [N, H]``: likely neighbours
    (see :func:`~gmmot_core.laguerre.power_cells`)."""
    cells = power_cells(y, w, density.lo, density.hi, sizes.max_vertices, sizes.grid, hint)
    return cell_integrals(cells, y, density, sizes.pieces)


def _laplacian(y, ints: CellIntegrals):
    """Matvec and diagonal of the weighted cell-adjacency Laplacian dm/dw
    (off-diagonal ``-c_ij``, ``c_ij = int_ij rho ds / (2 |y_i - y_j|)``)."""
    labels = ints.labels
    n = labels.shape[0]
    nb = jnp.clip(labels, 0, n - 1)
    dist = jnp.sqrt(jnp.sum((y[:, None, :] - y[nb]) ** 2, -1))
    c = jnp.where(labels >= 0, ints.edge_mass / (2.0 * jnp.where(dist > 0, dist, 1.0)), 0.0)

    def matvec(x):
        # each edge i -> j adds c/2 (x_i - x_j) to row i and c/2 (x_j - x_i) to row j,
        # so the operator is exactly symmetric even where the two cells' integrals of a
        # shared edge differ by round-off
        flow = 0.5 * c * (x[:, None] - x[nb])
        return jnp.sum(flow, 1) - jax.ops.segment_sum(flow.ravel(), nb.ravel(), num_segments=n)

    diag = 0.5 * jnp.sum(c, 1) + 0.5 * jax.ops.segment_sum(c.ravel(), nb.ravel(), n)
    return matvec, diag


def _cg(matvec, diag, rhs, iters: int, tol):
    """Jacobi-preconditioned CG for ``L x = rhs - mean(rhs)``. ``L`` is a connected
    graph's Laplacian, singular only along constants: with the right-hand side projected
    off them, the Krylov space stays in the range and no regularisation is needed (one
    would bias the cells whose boundary carries almost no density)."""
    inv = jnp.where(diag > 0, 1.0 / jnp.where(diag > 0, diag, 1.0), 0.0)
    a = matvec

    rhs = rhs - jnp.mean(rhs)
    bnorm = jnp.linalg.norm(rhs)
    z = inv * rhs
    init = (jnp.zeros_like(rhs), rhs, z, jnp.dot(rhs, z), jnp.asarray(0))

    def cond(s):
        return (s[4] < iters) & (jnp.linalg.norm(s[1]) > tol * bnorm)

    def body(s):
        x, r, p, rz, i = s
        ap = a(p)
        alpha = rz / jnp.dot(p, ap)
        x = x + alpha * p
        r = r - alpha * ap
        z = inv * r
        rz_new = jnp.dot(r, z)
        return x, r, z + (rz_new / rz) * p, rz_new, i + 1

    return jax.lax.while_loop(cond, body, init)[0]


def cold_weights(y, density: ImageDensity):
    """A start where every cell is non-empty: ``w_i = dist(y_i, box)^2``. With ``p_i`` the
    projection of ``y_i`` on the box, ``|x - y_i|^2 >= |x - p_i|^2 + w_i`` on the box,
    so ``p_i`` lies in cell ``i`` (Voronoi weights 0 for Diracs inside)."""
    p = jnp.clip(y, density.lo, density.hi)
    return jnp.sum((y - p) ** 2, -1)


@partial(jax.jit, static_argnames=("sizes", "max_iterations", "cg_iterations"))
def _newton(
    y, nu, density, w0, tol, sizes: Sizes, max_iterations: int, cg_iterations: int, hint=None
):
    dt = y.dtype

    def evaluate(w, hint=None):
        return integrals(y, w, density, sizes, hint)

    def err(ints):
        return jnp.max(jnp.abs(ints.mass - nu))

    ints = evaluate(w0, hint)
    # a warm start that empties a cell (the Diracs moved) restarts cold
    cold = jnp.min(ints.mass) <= 0
    w0 = jnp.where(cold, cold_weights(y, density), w0)
    ints = jax.lax.cond(cold, lambda: evaluate(w0), lambda: ints)
    eps0 = 0.5 * jnp.minimum(jnp.min(nu), jnp.min(ints.mass))
    # nothing to do when stacked, not exact or a cell is empty: flag it, never loop
    start_bad = ((ints.status & (SIZE_BITS | STACKED)) != 0) | (eps0 <= 0)
    cg_tol = jnp.asarray(1e-10 if dt == jnp.float64 else 1e-5, dt)

    def cond(s):
        _, ints, it, _, _, _, stalled = s
        return (err(ints) > tol) & (it < max_iterations) & ~stalled

    def body(s):
        w, ints, it, evals, t_prev, status, _ = s
        matvec, diag = _laplacian(y, ints)
        d = _cg(matvec, diag, nu - ints.mass, cg_iterations, cg_tol)
        e0 = jnp.linalg.norm(ints.mass - nu)

        def rejected(t, ints_t):
            return (jnp.min(ints_t.mass) < eps0) | ~(
                jnp.linalg.norm(ints_t.mass - nu) <= (1.0 - t / 2.0) * e0
            )

        def inexact(ints_t):
            return (ints_t.status & SIZE_BITS) != 0

        def ls_cond(ls):
            t, ints_t, tries = ls
            return ~inexact(ints_t) & rejected(t, ints_t) & (tries < 60)

        def ls_body(ls):
            t, _, tries = ls
            t = t / 2.0
            return t, evaluate(w + t * d, ints.labels), tries + 1

        # KMT backtracking, started from 4x the last accepted step (not from 1 each time).
        # A trial whose diagram is not exact (too few candidates, vertices or pieces)
        # ends the solve with its flag: the host repeats it with larger sizes.
        t0 = jnp.minimum(1.0, 4.0 * t_prev)
        t, ints_t, tries = jax.lax.while_loop(
            ls_cond, ls_body, (t0, evaluate(w + t0 * d, ints.labels), jnp.asarray(0))
        )
        ok = ~inexact(ints_t) & ~rejected(t, ints_t)
        w_new = jnp.where(ok, w + t * d, w)
        ints_new = jax.tree.map(lambda a, b: jnp.where(ok, a, b), ints_t, ints)
        status = status | ints_new.status | jnp.where(ok, 0, ints_t.status & SIZE_BITS)
        return w_new, ints_new, it + 1, evals + tries + 1, t, status, ~ok

    init = (w0, ints, jnp.asarray(0), jnp.asarray(1), jnp.asarray(1.0, dt), ints.status, start_bad)
    w, ints, it, evals, _, status, _ = jax.lax.while_loop(cond, body, init)
    e = err(ints)
    status = (
        status
        | jnp.where(e > tol, NOT_CONVERGED, 0)
        | jnp.where((eps0 <= 0) & (jnp.min(nu) > 0), EMPTY_CELL, 0)
    ).astype(jnp.int32)
    return SolveResult(w, ints, it, evals, e, status)


def solve_weights(
    y,
    nu,
    density: ImageDensity,
    w0=None,
    tol=None,
    sizes: Sizes | None = None,
    max_iterations: int = 100,
    cg_iterations: int = 4000,
) -> SolveResult:
    """Damped Newton for ``w [N]`` with ``m_i(w) = nu_i`` (stop at max |m - nu| <= ``tol``,
    default 1e-8 in float64, 1e-5 in float32); ``w0`` warm-starts (default
    :func:`cold_weights`: Voronoi for Diracs inside the box).

    Each step solves ``L d = nu - m`` by CG and halves ``t`` (from 4x the last accepted
    step) until no cell holds less than ``eps0 = min(min nu, min m(w0)) / 2`` and
    ``|m - nu|`` decreased by ``(1 - t/2)``. When a size ran out (flagged in ``status``)
    the solve is repeated with it doubled, from the last weights. Under ``jax.jit`` there
    is no repeat: the flags are returned.
    """
    y = jnp.asarray(y)
    n = y.shape[0]
    dt = y.dtype
    sizes = sizes or default_sizes(n, density.rho.shape)
    tol = jnp.asarray((1e-8 if dt == jnp.float64 else 1e-5) if tol is None else tol, dt)
    w = cold_weights(y, density).astype(dt) if w0 is None else jnp.asarray(w0, dt)
    while True:
        res = _newton(y, nu, density, w, tol, sizes, max_iterations, cg_iterations)
        if isinstance(res.status, jax.core.Tracer):
            return res._replace(sizes=sizes)
        bigger = grow_sizes(sizes, int(res.status), n)
        if bigger is None or not int(res.status) & SIZE_BITS:
            return res._replace(sizes=sizes)
        sizes = bigger
        # restart from the last weights whose diagram was exact, else from the start
        w = res.weights if not int(res.integrals.status) & SIZE_BITS else w


def _uniform(positions, nu):
    n = positions.shape[0]
    return jnp.full((n,), 1.0 / n, positions.dtype) if nu is None else jnp.asarray(nu)


@jax.custom_vjp
def w2(positions, density: ImageDensity, nu=None):
    """W2^2 between the Diracs ``positions [N, 2]`` (masses ``nu``, default uniform) and
    ``density`` (cold Newton solve; differentiable: gradient ``2 m_i (y_i - b_i)``)."""
    return _w2_fwd(positions, density, nu)[0]


def _w2_fwd(positions, density, nu):
    res = solve_weights(positions, _uniform(positions, nu), density)
    grad = -2.0 * res.integrals.first  # 2 m_i (y_i - b_i) = -2 int (x - y_i) rho
    return jnp.sum(res.integrals.second), (grad, density, nu)


def _w2_bwd(saved, g):
    grad, density, nu = saved
    zero_density = jax.tree.map(jnp.zeros_like, density)
    return (g * grad, zero_density, None if nu is None else jnp.zeros_like(nu))


w2.defvjp(_w2_fwd, _w2_bwd)
