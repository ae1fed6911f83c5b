"""The KMT Newton Hessian (a graph Laplacian of edge masses) and its CG solve."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gmmot_core.semidiscrete.integrals import CellIntegrals


class Laplacian(NamedTuple):
    """The weighted cell-adjacency Laplacian ``dm/dw``: ``L x = diag x - sum_k c[:, k]
    x[nb[:, k]]`` with ``c [N, W]`` (0 = no edge) and ``nb [N, W]`` neighbour indices."""

    c: jax.Array
    nb: jax.Array
    diag: jax.Array

    def __call__(self, x):
        return self.diag * x - jnp.sum(self.c * x[self.nb], 1)


def laplacian(y, ints: CellIntegrals) -> Laplacian:
    """The Laplacian dm/dw (off-diagonal ``-c_ij``, ``c_ij = int_ij rho ds /
    (2 |y_i - y_j|)``); called, it is the matvec.

    Each coefficient is the mean of the two cells' integrals of their shared edge (kept
    only where both cells have it), so the operator is exactly symmetric and its matvec
    is a gather, no scatter."""
    n = ints.labels.shape[0]
    nbr = ints.labels
    nb = jnp.clip(nbr, 0, n - 1)
    back = (nbr[nb] == jnp.arange(n)[:, None, None]) & (nbr >= 0)[..., None]  # [N, V, V]
    both = jnp.any(back, -1) & (nbr >= 0)
    mass = ints.edge_mass
    mass = jnp.where(both, 0.5 * (mass + jnp.sum(jnp.where(back, mass[nb], 0.0), -1)), 0.0)
    dist = jnp.sqrt(jnp.sum((y[:, None, :] - y[nb]) ** 2, -1))
    c = mass / (2.0 * jnp.where(dist > 0, dist, 1.0))
    return Laplacian(c, nb, jnp.sum(c, 1))


def jacobi(lap: Laplacian):
    """``r -> D^-1 r`` (0 where a cell has no boundary density). A two-level
    preconditioner (a dense coarse solve on ~N/16 binned aggregates) was tried: 4x
    fewer CG iterations at N = 5000, but its inexact directions took 32 Newton steps
    where these take 28, and the solve was slower."""
    d = lap.diag
    inv = jnp.where(d > 0, 1.0 / jnp.where(d > 0, d, 1.0), 0.0)
    return lambda r: inv * r


def cg(matvec, precondition, diag, rhs, iters: int, tol, scale=1.0):
    """Preconditioned CG for ``L x = rhs``, ``L`` a connected graph's Laplacian
    (singular only along constants). The right-hand side is first made to sum to zero
    by removing a multiple of ``diag`` (not of the constants, which would push cells
    with almost no boundary density by huge amounts); the Krylov space then stays in the
    range and no regularisation is needed. Stops when ``|scale r| <= tol |scale rhs|``
    (``scale [N]`` or 1), which keeps the result a descent direction for the residual
    measured in those units."""
    a = matvec
    total = jnp.sum(diag)
    rhs = rhs - diag * (jnp.sum(rhs) / jnp.where(total > 0, total, 1.0))
    z = precondition(rhs)
    bound = tol * jnp.linalg.norm(scale * rhs)
    init = (jnp.zeros_like(rhs), rhs, z, jnp.dot(rhs, z), jnp.asarray(0))

    def cond(s):
        return (s[4] < iters) & (jnp.linalg.norm(scale * s[1]) > bound)

    def body(s):
        x, r, p, rz, i = s
        ap = a(p)
        alpha = rz / jnp.dot(p, ap)
        x = x + alpha * p
        r = r - alpha * ap
        z = precondition(r)
        rz_new = jnp.dot(r, z)
        return x, r, z + (rz_new / rz) * p, rz_new, i + 1

    return jax.lax.while_loop(cond, body, init)[0]
