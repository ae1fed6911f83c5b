"""WORK IN PROGRESS (issue 6): the damped Newton below does not converge yet on
high-contrast targets; the cells and integrals it builds on are exact and tested.

Exact semi-discrete OT from Diracs to a pixel-constant density: damped Newton on the
Laguerre weights (Kitagawa-Merigot-Thibert) and W2^2 with its closed-form gradient.

W2^2 = sum_i int_{L_i} |x - y_i|^2 rho(x) dx (no 1/2 factor, as sdot), with the weights
``w`` solved so that every cell holds mass ``nu_i``. Its gradient in ``y_i`` is
``2 m_i (y_i - b_i)`` (``b_i`` the cell barycentre), so a Lloyd step ``y <- b`` is a
gradient step with learning rate ``1 / (2 m_i)``.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from gmmot_core.laguerre import (
    CellIntegrals,
    ImageDensity,
    cell_integrals,
    default_budget,
    power_cells,
)

__all__ = ["NOT_CONVERGED", "SolveResult", "integrals", "solve_weights", "w2"]

NOT_CONVERGED = 16  # Newton stopped at its iteration cap


class SolveResult(NamedTuple):
    """``weights [N]``, the cells' ``integrals`` at those weights, Newton ``iterations``,
    ``error`` = max |m_i - nu_i| and ``status`` (laguerre bits | NOT_CONVERGED)."""

    weights: jax.Array
    integrals: CellIntegrals
    iterations: jax.Array
    error: jax.Array
    status: jax.Array


def integrals(y, w, density: ImageDensity, k: int, budget: int) -> CellIntegrals:
    """Cells of ``(y, w)`` and their exact integrals."""
    cells = power_cells(y, w, density.lo, density.hi, k)
    return cell_integrals(cells, y, density, budget)


def _laplacian(y, ints: CellIntegrals):
    """Matvec of the weighted cell-adjacency Laplacian dm/dw (c_ij = int_ij rho / 2|y_i-y_j|)."""
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
    """Jacobi-preconditioned CG on the (zero-mean) Laplacian system, regularised by 1e-12."""
    scale = jnp.maximum(jnp.max(diag), 1e-300)
    reg = 1e-12 * scale
    inv = 1.0 / (diag + reg)

    def a(x):
        return matvec(x) + reg * x

    rhs = rhs - jnp.mean(rhs)
    x = jnp.zeros_like(rhs)
    r = rhs
    z = inv * r
    p = z
    rz = jnp.dot(r, z)
    bnorm = jnp.linalg.norm(rhs)

    def cond(s):
        r, i = s[1], s[4]
        return (i < iters) & (jnp.linalg.norm(r) > tol * bnorm)

    def body(s):
        x, r, p, rz, i = s
        ap = a(p)
        alpha = rz / jnp.dot(p, ap)
        x = x + alpha * p
        r = r - alpha * ap
        z = inv * r
        rz_new = jnp.dot(r, z)
        p = z + (rz_new / rz) * p
        return x, r, p, rz_new, i + 1

    x, *_ = jax.lax.while_loop(cond, body, (x, r, p, rz, jnp.asarray(0)))
    return x


@partial(jax.jit, static_argnames=("k", "budget", "max_iterations", "cg_iterations"))
def solve_weights(
    y,
    nu,
    density: ImageDensity,
    w0=None,
    tol=None,
    k: int = 24,
    budget: int | None = None,
    max_iterations: int = 100,
    cg_iterations: int = 2000,
) -> SolveResult:
    """Damped Newton for ``w`` with ``m_i(w) = nu_i`` (stop at max |m - nu| <= ``tol``,
    default 1e-8 in float64, 1e-5 in float32); ``w0`` warm-starts (default 0 = Voronoi).

    Each step solves ``L d = nu - m`` (CG) and halves ``t`` until no cell holds less than
    ``eps0 = min(min nu, min m(w0)) / 2`` and ``|m - nu|`` decreased by ``(1 - t/2)``.
    """
    n = y.shape[0]
    dt = y.dtype
    budget = budget or default_budget(n, density.rho.shape)
    tol = jnp.asarray((1e-8 if dt == jnp.float64 else 1e-5) if tol is None else tol, dt)
    w = jnp.zeros(n, dt) if w0 is None else jnp.asarray(w0, dt)

    def evaluate(w):
        return integrals(y, w, density, k, budget)

    ints = evaluate(w)
    eps0 = 0.5 * jnp.minimum(jnp.min(nu), jnp.min(ints.mass))

    def err(ints):
        return jnp.max(jnp.abs(ints.mass - nu))

    def cond(s):
        _, ints, it, _ = s
        return (err(ints) > tol) & (it < max_iterations)

    def body(s):
        w, ints, it, status = s
        matvec, diag = _laplacian(y, ints)
        d = _cg(matvec, diag, nu - ints.mass, cg_iterations, jnp.asarray(1e-12, dt))
        e0 = jnp.linalg.norm(ints.mass - nu)

        def ls_cond(ls):
            t, ints_t, tries = ls
            bad = (jnp.min(ints_t.mass) < eps0) | (
                jnp.linalg.norm(ints_t.mass - nu) > (1.0 - t / 2.0) * e0
            )
            return bad & (tries < 40)

        def ls_body(ls):
            t, _, tries = ls
            t = t / 2.0
            return t, evaluate(w + t * d), tries + 1

        t, ints_t, _ = jax.lax.while_loop(
            ls_cond, ls_body, (jnp.asarray(1.0, dt), evaluate(w + d), jnp.asarray(0))
        )
        return w + t * d, ints_t, it + 1, status | ints_t.status

    w, ints, it, status = jax.lax.while_loop(cond, body, (w, ints, jnp.asarray(0), ints.status))
    status = status | jnp.where(err(ints) > tol, NOT_CONVERGED, 0).astype(status.dtype)
    return SolveResult(w, ints, it, err(ints), status)


@partial(jax.custom_vjp, nondiff_argnums=())
def w2(positions, density: ImageDensity, nu=None):
    """W2^2 between the Diracs ``positions [N, 2]`` (masses ``nu``, default uniform) and
    ``density`` (cold Newton solve; differentiable: gradient ``2 m_i (y_i - b_i)``)."""
    return _w2_fwd(positions, density, nu)[0]


def _w2_fwd(positions, density, nu):
    n = positions.shape[0]
    nu_ = jnp.full((n,), 1.0 / n, positions.dtype) if nu is None else nu
    res = solve_weights(positions, nu_, density)
    ints = res.integrals
    grad = 2.0 * (-ints.first)  # 2 m_i (y_i - b_i) = -2 int (x - y_i) rho
    return jnp.sum(ints.second), (grad, density, nu)


def _w2_bwd(saved, g):
    grad, density, nu = saved
    zero_density = jax.tree.map(jnp.zeros_like, density)
    return (g * grad, zero_density, None if nu is None else jnp.zeros_like(nu))


w2.defvjp(_w2_fwd, _w2_bwd)
