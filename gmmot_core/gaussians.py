"""Gaussians in 2D: Bures-Wasserstein distance, geodesics, OT maps and barycenters.

All matrix functions use closed forms for 2x2 symmetric positive (semi-)definite
matrices; no iterative ``sqrtm`` and no eigendecomposition. For an SPD 2x2 matrix
``A`` with ``s = sqrt(det A)`` and ``t = sqrt(tr A + 2 s)``, Cayley-Hamilton gives
``sqrt(A) = (A + s I) / t``; the same formula holds for any 2x2 matrix with
non-negative real eigenvalues (e.g. a product of two SPD matrices).

Shapes: ``means [..., 2]``, ``covs [..., 2, 2]``; functions broadcast over leading axes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = [
    "bures_barycenter",
    "bures_barycenter_fixed",
    "bures_cost_matrix",
    "bures_squared",
    "det2",
    "geodesic",
    "inv2",
    "ot_map",
    "sqrtm2",
    "w2_squared",
]


def _tiny(x: jax.Array) -> jax.Array:
    return jnp.asarray(jnp.finfo(x.dtype).tiny, x.dtype)


def safe_sqrt(x: jax.Array) -> jax.Array:
    """``sqrt(max(x, 0))`` whose gradient stays finite at 0 (it is 0 there)."""
    pos = x > _tiny(x)
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


def det2(a: jax.Array) -> jax.Array:
    """Determinant of ``[..., 2, 2]`` matrices -> ``[...]``."""
    return a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]


def trace2(a: jax.Array) -> jax.Array:
    """Trace of ``[..., 2, 2]`` matrices -> ``[...]``."""
    return a[..., 0, 0] + a[..., 1, 1]


def adj2(a: jax.Array) -> jax.Array:
    """Adjugate of ``[..., 2, 2]`` matrices (``A adj(A) = det(A) I``)."""
    return jnp.stack(
        [
            jnp.stack([a[..., 1, 1], -a[..., 0, 1]], -1),
            jnp.stack([-a[..., 1, 0], a[..., 0, 0]], -1),
        ],
        -2,
    )


def inv2(a: jax.Array) -> jax.Array:
    """Inverse of ``[..., 2, 2]`` matrices."""
    return adj2(a) / det2(a)[..., None, None]


def symmetrize(a: jax.Array) -> jax.Array:
    """``(A + A^T) / 2`` over the last two axes."""
    return 0.5 * (a + jnp.swapaxes(a, -1, -2))


def sqrtm2(a: jax.Array) -> jax.Array:
    """Principal square root of ``[..., 2, 2]`` matrices with non-negative eigenvalues
    (other sizes are refused).

    Eigenvalues that round-off pushed slightly below 0 are treated as 0 (the
    determinant is clipped), so PSD inputs never give NaN.
    """
    check_2d(cov=a)
    s = safe_sqrt(det2(a))
    t = safe_sqrt(trace2(a) + 2.0 * s)
    eye = jnp.eye(2, dtype=a.dtype)
    t = jnp.where(t > 0, t, 1.0)
    return (a + s[..., None, None] * eye) / t[..., None, None]


def check_2d(**arrays) -> None:
    """Refuse arrays that are not 2D points / 2x2 covariances (a shape check: static
    under ``jit``): ``means`` must end in ``2``, ``covs`` in ``(2, 2)``."""
    for name, a in arrays.items():
        shape = jnp.shape(a)
        want = (2, 2) if name.startswith("cov") else (2,)
        if tuple(shape[-len(want) :]) != want or len(shape) < len(want):
            raise ValueError(
                f"{name}: gmmot works in 2D; expected shape [..., {', '.join(map(str, want))}],"
                f" got {tuple(shape)}"
            )


def bures_squared(cov0: jax.Array, cov1: jax.Array) -> jax.Array:
    """Squared Bures distance ``tr S0 + tr S1 - 2 tr (S0^1/2 S1 S0^1/2)^1/2`` -> ``[...]``
    (2x2 only: other sizes are refused).

    Uses ``tr sqrt(M) = sqrt(tr M + 2 sqrt(det M))`` with ``M = S0^1/2 S1 S0^1/2``,
    ``tr M = tr(S0 S1)`` and ``det M = det S0 det S1``: no square root of a matrix.
    Clipped at 0 so identical covariances give exactly non-negative round-off.
    """
    check_2d(cov0=cov0, cov1=cov1)
    tr01 = jnp.sum(cov0 * jnp.swapaxes(cov1, -1, -2), axis=(-1, -2))
    cross = safe_sqrt(tr01 + 2.0 * safe_sqrt(det2(cov0) * det2(cov1)))
    return jnp.maximum(trace2(cov0) + trace2(cov1) - 2.0 * cross, 0.0)


def w2_squared(mean0: jax.Array, cov0: jax.Array, mean1: jax.Array, cov1: jax.Array) -> jax.Array:
    """W2^2 between N(mean0, cov0) and N(mean1, cov1): ``|m0 - m1|^2 + Bures^2``."""
    check_2d(mean0=mean0, mean1=mean1)
    return jnp.sum((mean0 - mean1) ** 2, axis=-1) + bures_squared(cov0, cov1)


def bures_cost_matrix(
    means0: jax.Array, covs0: jax.Array, means1: jax.Array, covs1: jax.Array
) -> jax.Array:
    """Pairwise W2^2 costs: ``means0 [K0, 2], covs0 [K0, 2, 2]``, ... -> ``[K0, K1]``."""
    return w2_squared(means0[:, None], covs0[:, None], means1[None], covs1[None])


def ot_map(cov0: jax.Array, cov1: jax.Array) -> jax.Array:
    """Symmetric matrix ``T`` of the OT map ``x -> m1 + T (x - m0)`` from cov0 to cov1.

    ``T = S0^-1/2 (S0^1/2 S1 S0^1/2)^1/2 S0^-1/2 = S0^-1 (S0 S1)^1/2``, which for 2x2
    is ``(S1 + sqrt(det S1 / det S0) adj(S0)) / sqrt(tr(S0 S1) + 2 sqrt(det S0 det S1))``.
    Needs ``cov0`` non-singular (the Monge map does not exist otherwise).
    """
    d0, d1 = det2(cov0), det2(cov1)
    tr01 = jnp.sum(cov0 * jnp.swapaxes(cov1, -1, -2), axis=(-1, -2))
    tau = safe_sqrt(tr01 + 2.0 * safe_sqrt(d0 * d1))
    ratio = safe_sqrt(d1 / d0)
    t = (cov1 + ratio[..., None, None] * adj2(cov0)) / tau[..., None, None]
    return symmetrize(t)


def geodesic(
    mean0: jax.Array, cov0: jax.Array, mean1: jax.Array, cov1: jax.Array, t: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """McCann interpolation between two Gaussians at time ``t`` -> ``(mean_t, cov_t)``.

    ``cov_t = ((1-t) I + t T) S0 ((1-t) I + t T)``, expanded with ``T S0 T = S1`` so
    that both endpoints are reproduced exactly.
    """
    t = jnp.asarray(t, mean0.dtype)
    tm = t[..., None]
    tc = t[..., None, None]
    mean_t = (1.0 - tm) * mean0 + tm * mean1
    tmat = ot_map(cov0, cov1)
    cross = tmat @ cov0
    cov_t = (
        (1.0 - tc) ** 2 * cov0
        + tc * (1.0 - tc) * (cross + jnp.swapaxes(cross, -1, -2))
        + tc**2 * cov1
    )
    return mean_t, symmetrize(cov_t)


def _sym_sqrt(m):
    """Square root of symmetric PSD ``(xx, xy, yy)`` (Cayley-Hamilton, as :func:`sqrtm2`)."""
    x, y, z = m
    s = safe_sqrt(x * z - y * y)
    t = safe_sqrt(x + z + 2.0 * s)
    t = jnp.where(t > 0, t, 1.0)
    return (x + s) / t, y / t, (z + s) / t


def _sym_sandwich(a, m):
    """``A M A`` for symmetric ``A = (a, b, c)``, ``M = (p, q, r)`` (symmetric result)."""
    (a, b, c), (p, q, r) = a, m
    return (
        a * a * p + 2.0 * a * b * q + b * b * r,
        a * b * p + (a * c + b * b) * q + b * c * r,
        b * b * p + 2.0 * b * c * q + c * c * r,
    )


def _entries(a: jax.Array):
    """``[..., 2, 2]`` symmetric -> ``(xx, xy, yy)``."""
    return a[..., 0, 0], 0.5 * (a[..., 0, 1] + a[..., 1, 0]), a[..., 1, 1]


def _matrix(m) -> jax.Array:
    x, y, z = m
    return jnp.stack([jnp.stack([x, y]), jnp.stack([y, z])])


def _eye(like: jax.Array):
    one, zero = jnp.ones((), like.dtype), jnp.zeros((), like.dtype)
    return one, zero, one


def _fixed_point(cov, ms, weights):
    """One update ``S^-1/2 (sum_m w_m (S^1/2 S_m S^1/2)^1/2)^2 S^-1/2`` on the entries
    ``(xx, xy, yy)`` of ``S`` and of ``S_m [M]``: fused elementwise kernels only."""
    root = _sym_sqrt(cov)
    det = root[0] * root[2] - root[1] * root[1]
    inv_root = (root[2] / det, -root[1] / det, root[0] / det)
    inner = _sym_sqrt(_sym_sandwich(root, ms))
    x, y, z = (jnp.sum(weights * e) for e in inner)
    square = (x * x + y * y, y * (x + z), y * y + z * z)
    return _sym_sandwich(inv_root, square)


def bures_barycenter_fixed(covs: jax.Array, weights: jax.Array, iterations: int) -> jax.Array:
    """:func:`bures_barycenter` with exactly ``iterations`` updates from the identity and
    no stopping test (as OTT's barycenter loop). Symmetric matrices are carried as their
    three entries, so the loop is a handful of fused elementwise kernels (quick to
    compile on CPU). ``covs [M, 2, 2]``, ``weights [M]`` -> ``[2, 2]``."""
    ms = _entries(covs)
    cov = jax.lax.fori_loop(0, iterations, lambda _, c: _fixed_point(c, ms, weights), _eye(covs))
    return _matrix(cov)


def bures_barycenter(
    covs: jax.Array,
    weights: jax.Array,
    *,
    tolerance: float | jax.Array = 1e-4,
    min_iterations: int = 1,
    max_iterations: int = 100,
    inner_iterations: int = 5,
) -> tuple[jax.Array, jax.Array]:
    """Weighted Bures barycenter of ``covs [M, 2, 2]`` with ``weights [M]`` (sum to 1).

    Fixed point of Alvarez-Esteban et al. (2016), started from the identity:
    ``S <- S^-1/2 (sum_m w_m (S^1/2 S_m S^1/2)^1/2)^2 S^-1/2``. Stops once the
    mean squared entry change between two iterates is ``<= tolerance``, checked
    every ``inner_iterations`` (the rule of OTT's ``Bures.barycenter``).

    Returns ``(cov [2, 2], n_iterations)``.
    """
    dtype = covs.dtype
    tolerance = jnp.asarray(tolerance, dtype)
    ms = _entries(covs)

    def one(cov):
        nxt = _fixed_point(cov, ms, weights)
        dx, dy, dz = (a - b for a, b in zip(nxt, cov, strict=True))
        return nxt, (dx * dx + 2.0 * dy * dy + dz * dz) / 4.0

    def block(carry):
        cov, _, it = carry
        diff = jnp.asarray(jnp.inf, dtype)
        for _ in range(inner_iterations):
            cov, diff = one(cov)
        return cov, diff, it + inner_iterations

    def cond(carry):
        _, diff, it = carry
        return (it < max_iterations) & ((it < min_iterations) | (diff > tolerance))

    init = (_eye(covs), jnp.asarray(jnp.inf, dtype), jnp.asarray(0))
    cov, _, it = jax.lax.while_loop(cond, block, init)
    return _matrix(cov), it
