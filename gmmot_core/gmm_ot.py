"""GMM-OT between two mixtures: the (unbalanced) coupling, its diagnostics, maps and mu_t.

Delon & Desolneux (2020) restrict transport plans to Gaussian mixtures: the plan between
mixtures is a coupling ``P [K0, K1]`` of their components for the Bures cost, MW2^2 =
<P, C>. With entropic regularisation ``epsilon`` and KL marginal penalties
``rho = eps tau / (1 - tau)`` (tau < 1) the coupling may create and destroy mass; the
functions here expose what that does (marginals, factors, total mass).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gmmot_core.gaussians import bures_cost_matrix, geodesic, ot_map
from gmmot_core.mixture import GMM, component_log_prob
from gmmot_core.newton_ot import newton_ot
from gmmot_core.sinkhorn import rho_from_tau, sinkhorn

__all__ = [
    "CouplingReport",
    "couple",
    "exact_mw2",
    "generalized_kl",
    "interpolate",
    "mean_map",
    "report",
]


class CouplingReport(NamedTuple):
    """Everything a view needs about the coupling of two mixtures.

    ``cost [K0, K1]`` (W2^2 between components); ``coupling [K0, K1]`` (raw, mass F);
    ``normalized [K0, K1]`` (``coupling / F``); ``total_mass`` F; ``row [K0]`` /
    ``col [K1]``: marginals of the raw coupling; ``outflow [K0] = row / a`` and
    ``inflow [K1] = col / b``: how much of each component's weight the coupling uses;
    ``path_factor [K0, K1] = outflow_k / inflow_l``: growth of the mass carried by path
    k -> l (mass a_k row-share at the source becomes b_l col-share at the target;
    1 everywhere when balanced); ``transport`` = <P, C>; ``mw2 = <P, C> / F`` (MW2^2 of
    the normalised coupling); ``kl_a``, ``kl_b``: generalized KL of the marginals;
    ``uw2 = <P, C> + rho (kl_a + kl_b)``; ``reg_ot_cost`` (OTT's); ``rho``, ``tau``,
    ``epsilon``; ``f``, ``g``, ``n_iters``, ``converged`` from the solver;
    ``mass_penalty = F log F - F + 1`` (the generalized KL of the total mass to 1).
    """

    cost: jax.Array
    coupling: jax.Array
    normalized: jax.Array
    total_mass: jax.Array
    row: jax.Array
    col: jax.Array
    outflow: jax.Array
    inflow: jax.Array
    path_factor: jax.Array
    transport: jax.Array
    mw2: jax.Array
    kl_a: jax.Array
    kl_b: jax.Array
    uw2: jax.Array
    reg_ot_cost: jax.Array
    rho: jax.Array
    tau: jax.Array
    epsilon: jax.Array
    f: jax.Array
    g: jax.Array
    n_iters: jax.Array
    converged: jax.Array
    mass_penalty: jax.Array


def generalized_kl(p: jax.Array, q: jax.Array) -> jax.Array:
    """``sum p log(p / q) - p + q`` (0 log 0 = 0)."""
    pos = p > 0
    ratio = jnp.where(pos, p / jnp.where(q > 0, q, 1.0), 1.0)
    return jnp.sum(jnp.where(pos, p * jnp.log(ratio), 0.0) - p + q)


def _safe_div(x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.where(y > 0, x / jnp.where(y > 0, y, 1.0), 0.0)


def report(cost, out, a, b, epsilon, tau) -> CouplingReport:
    """Assemble a :class:`CouplingReport` from a cost matrix and a ``SinkhornOutput``."""
    p = out.coupling
    total = jnp.sum(p)
    row, col = jnp.sum(p, axis=1), jnp.sum(p, axis=0)
    outflow, inflow = _safe_div(row, a), _safe_div(col, b)
    factor = _safe_div(outflow[:, None], inflow[None, :])
    transport = jnp.sum(p * cost)
    kl_a, kl_b = generalized_kl(row, a), generalized_kl(col, b)
    rho = rho_from_tau(epsilon, tau)
    penalty = jnp.where(jnp.isinf(rho), 0.0, rho) * (kl_a + kl_b)  # 0 when balanced
    return CouplingReport(
        cost=cost,
        coupling=p,
        normalized=_safe_div(p, total),
        total_mass=total,
        row=row,
        col=col,
        outflow=outflow,
        inflow=inflow,
        path_factor=factor,
        transport=transport,
        mw2=_safe_div(transport, total),
        kl_a=kl_a,
        kl_b=kl_b,
        uw2=transport + penalty,
        reg_ot_cost=out.reg_ot_cost,
        rho=rho,
        tau=jnp.asarray(tau, cost.dtype),
        epsilon=jnp.asarray(epsilon, cost.dtype),
        f=out.f,
        g=out.g,
        n_iters=out.n_iters,
        converged=out.converged,
        mass_penalty=generalized_kl(total[None], jnp.ones((1,), cost.dtype)),
    )


def _is_balanced(tau) -> bool:
    """Whether ``tau`` is a concrete 1 (a traced tau is taken as maybe unbalanced)."""
    try:
        return bool(np.all(np.asarray(tau) == 1.0))
    except (TypeError, jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return False


def couple(
    gmm0: GMM,
    gmm1: GMM,
    epsilon: float | jax.Array = 1e-2,
    tau: float | jax.Array = 1.0,
    *,
    threshold: float | jax.Array = 1e-3,
    init: tuple[jax.Array, jax.Array] | None = None,
    max_iterations: int = 2000,
    solver: str = "auto",
) -> CouplingReport:
    """Entropic (unbalanced when tau < 1) GMM-OT coupling of two mixtures and its report.

    ``solver``: ``"sinkhorn"`` (OTT's semantics, capped at ``max_iterations`` sweeps),
    ``"newton"`` (balanced only: damped Newton with epsilon continuation,
    :mod:`~gmmot_core.newton_ot`, converged where Sinkhorn stalls at small epsilon),
    or ``"auto"`` (default): Newton when ``tau`` is a concrete 1, else Sinkhorn."""
    if solver not in ("auto", "sinkhorn", "newton"):
        raise ValueError(f"solver must be 'auto', 'sinkhorn' or 'newton', got {solver!r}")
    balanced = _is_balanced(tau)
    if solver == "newton" and not balanced:
        raise ValueError("solver='newton' solves balanced couplings only (tau = 1)")
    cost = bures_cost_matrix(gmm0.means, gmm0.covs, gmm1.means, gmm1.covs)
    if solver == "newton" or (solver == "auto" and balanced):
        out = newton_ot(cost, gmm0.weights, gmm1.weights, epsilon, threshold=threshold, init=init)
    else:
        out = sinkhorn(
            cost,
            gmm0.weights,
            gmm1.weights,
            epsilon,
            tau,
            threshold=threshold,
            init=init,
            max_iterations=max_iterations,
        )
    return report(cost, out, gmm0.weights, gmm1.weights, epsilon, tau)


def exact_mw2(gmm0: GMM, gmm1: GMM) -> tuple[np.ndarray, float]:
    """Unregularised MW2^2 (Delon & Desolneux): the plan ``[K0, K1]`` and ``<P, C>`` of the
    linear program over component couplings, on the host (float64; SciPy's HiGHS, a JAX
    dependency, solves the K0 x K1 transport LP exactly up to its 1e-9 tolerances)."""
    from scipy.optimize import linprog

    cost = np.asarray(bures_cost_matrix(gmm0.means, gmm0.covs, gmm1.means, gmm1.covs), np.float64)
    a = np.asarray(gmm0.weights, np.float64)
    b = np.asarray(gmm1.weights, np.float64)
    a, b = a / a.sum(), b / b.sum()
    k0, k1 = cost.shape
    rows = np.kron(np.eye(k0), np.ones((1, k1)))  # sum_l P_kl = a_k
    cols = np.kron(np.ones((1, k0)), np.eye(k1))  # sum_k P_kl = b_l
    res = linprog(
        cost.ravel(),
        A_eq=np.vstack([rows, cols])[:-1],  # one constraint is implied by the others
        b_eq=np.concatenate([a, b])[:-1],
        bounds=(0, None),
        method="highs",
    )
    if res.status != 0:
        raise RuntimeError(f"exact MW2: the transport LP failed ({res.message})")
    plan = res.x.reshape(k0, k1)
    return plan, float(np.sum(plan * cost))


def _pair_maps(gmm0: GMM, gmm1: GMM) -> tuple[jax.Array, jax.Array]:
    """Affine maps ``x -> A_kl x + t_kl`` of all component pairs: ``[K0,K1,2,2]``, ``[K0,K1,2]``."""
    a = ot_map(gmm0.covs[:, None], gmm1.covs[None])
    t = gmm1.means[None] - jnp.einsum("klij,kj->kli", a, gmm0.means)
    return a, t


def mean_map(
    points: jax.Array,
    gmm0: GMM,
    gmm1: GMM,
    coupling: jax.Array,
    source_weights: jax.Array | None = None,
) -> jax.Array:
    """Delon & Desolneux's barycentric GMM-OT map ``T_mean`` applied to ``points [N, 2]``.

    ``T(x) = sum_kl P_kl g_k(x) T_kl(x) / sum_k a_k g_k(x)`` with ``g_k`` the source
    component densities, ``T_kl`` the Gaussian OT map from component k to l, and ``a``
    the source weights (default: the row sums of ``coupling``, so an unbalanced coupling
    is used through its normalised plan). Computed with log-space weights, so points far
    from every component do not overflow (POT #872).
    """
    p = coupling / jnp.sum(coupling)
    a = jnp.sum(p, axis=1) if source_weights is None else source_weights / jnp.sum(source_weights)
    log_g = component_log_prob(gmm0, points)  # [N, K0]
    log_den = jax.nn.logsumexp(log_g + jnp.log(a)[None], axis=-1)  # [N]
    log_p = jnp.where(p > 0, jnp.log(jnp.where(p > 0, p, 1.0)), -jnp.inf)
    w = jnp.exp(log_g[:, :, None] + log_p[None] - log_den[:, None, None])  # [N, K0, K1]
    amat, t = _pair_maps(gmm0, gmm1)
    images = jnp.einsum("klij,nj->nkli", amat, points) + t[None]
    return jnp.einsum("nkl,nkli->ni", w, images)


def interpolate(
    gmm0: GMM, gmm1: GMM, coupling: jax.Array, t: float | jax.Array, min_mass: float = 1e-6
) -> GMM:
    """Displacement interpolation ``mu_t`` of the GMM-OT plan as a ``K0*K1``-component mixture.

    One component per coupled pair: weight ``P_kl / F`` (pairs below ``min_mass`` of the
    total get weight 0), the W2 geodesic between components k and l at time ``t``.
    ``mu_0`` and ``mu_1`` are the (reweighted) endpoints.
    """
    p = coupling / jnp.sum(coupling)
    p = jnp.where(p >= min_mass, p, 0.0)
    p = p / jnp.sum(p)
    k0, k1 = p.shape
    m0 = jnp.broadcast_to(gmm0.means[:, None], (k0, k1, 2))
    c0 = jnp.broadcast_to(gmm0.covs[:, None], (k0, k1, 2, 2))
    m1 = jnp.broadcast_to(gmm1.means[None], (k0, k1, 2))
    c1 = jnp.broadcast_to(gmm1.covs[None], (k0, k1, 2, 2))
    mt, ct = geodesic(m0, c0, m1, c1, jnp.full((k0, k1), t, gmm0.means.dtype))
    return GMM(p.reshape(-1), mt.reshape(-1, 2), ct.reshape(-1, 2, 2))
