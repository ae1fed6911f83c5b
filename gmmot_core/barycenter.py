"""Free-support Wasserstein barycenter of Gaussian mixtures (Bures cost), init / step / run.

The barycenter is a mixture of ``bar_size`` Gaussians with uniform weights (as OTT's
``FreeWassersteinBarycenter``; OTT #657). One step, for inputs m = 1..M with
barycentric weights ``lambda_m``:

1. entropic OT (Sinkhorn, Bures W2^2 cost) between the current support and every input;
2. for each support Gaussian i and input m, the Bures barycenter of input m's components
   weighted by the transport row ``P_m[i]`` (its "barycentric projection");
3. the new support Gaussian i = the Bures barycenter of those M projections with weights
   ``lambda``.

The cost of an iteration is ``sum_m lambda_m reg_ot_cost_m``; as OTT, the solver stops
once two consecutive costs agree to ``threshold`` (relative), after at least
``min_iterations`` and at most ``max_iterations``. Inputs with fewer components are
padded with zero-weight components. ``epsilon`` and ``lambda`` are traced.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gmmot_core.gaussians import bures_barycenter_fixed, bures_cost_matrix
from gmmot_core.mixture import GMM, log_prob
from gmmot_core.newton_ot import newton_ot
from gmmot_core.sinkhorn import sinkhorn

__all__ = [
    "BarycenterConfig",
    "BarycenterState",
    "Inputs",
    "barycenter_mixture",
    "init",
    "neg_log_density",
    "pad_inputs",
    "random_support",
    "restart",
    "run",
    "step",
    "support_from_input",
]


class BarycenterConfig(NamedTuple):
    """Static settings.

    ``min_iterations`` / ``max_iterations`` / ``threshold``-rule as OTT (5 / 50);
    ``solver``: ``"newton"`` (:func:`~gmmot_core.newton_ot.newton_ot`: converged
    entropic OT in ~10-30 Newton steps) or ``"sinkhorn"`` (OTT's solver and rules: up
    to ``max_sinkhorn_iterations`` = 2000 sweeps, often unconverged at small eps);
    ``ot_threshold``: L1 column-marginal error at which either solver stops (OTT's
    Sinkhorn default); ``warm_start``: start from the last potentials (OTT starts from 0; ``solver=
    "sinkhorn", warm_start=False`` replays OTT); ``bures_iterations``: fixed point
    iterations per Gaussian barycenter (OTT's loop performs 5); ``unroll``: Sinkhorn
    updates per loop trip (the inputs are tiny, so loop overhead dominates).
    """

    min_iterations: int = 5
    max_iterations: int = 50
    solver: str = "newton"
    ot_threshold: float = 1e-3
    max_sinkhorn_iterations: int = 2000
    warm_start: bool = True
    bures_iterations: int = 5
    unroll: int = 10


class Inputs(NamedTuple):
    """M input mixtures padded to ``K`` components: ``weights [M, K]`` (0 = padding),
    ``means [M, K, 2]``, ``covs [M, K, 2, 2]``."""

    weights: jax.Array
    means: jax.Array
    covs: jax.Array


class BarycenterState(NamedTuple):
    """``means [B, 2]``, ``covs [B, 2, 2]`` of the support; ``f [M, B]``, ``g [M, K]``
    potentials; ``coupling [M, B, K]`` of the last step; ``costs [max_iterations]`` (-1 =
    not computed); ``iteration``; ``converged``; ``done`` (converged, diverged or at the
    cap: further steps leave the state unchanged); ``warm`` (the potentials come from a
    solve: Newton starts from them); ``lambdas [M]``, ``epsilon``, ``threshold`` (traced
    knobs)."""

    means: jax.Array
    covs: jax.Array
    f: jax.Array
    g: jax.Array
    coupling: jax.Array
    costs: jax.Array
    iteration: jax.Array
    converged: jax.Array
    done: jax.Array
    warm: jax.Array
    lambdas: jax.Array
    epsilon: jax.Array
    threshold: jax.Array


def pad_inputs(mixtures: list[GMM]) -> Inputs:
    """Stack mixtures with different numbers of components (padding: weight 0, identity)."""
    k = max(g.means.shape[0] for g in mixtures)
    dtype = mixtures[0].means.dtype
    ws, ms, cs = [], [], []
    for g in mixtures:
        pad = k - g.means.shape[0]
        ws.append(jnp.concatenate([g.weights, jnp.zeros(pad, dtype)]))
        ms.append(jnp.concatenate([g.means, jnp.zeros((pad, 2), dtype)]))
        cs.append(jnp.concatenate([g.covs, jnp.tile(jnp.eye(2, dtype=dtype), (pad, 1, 1))]))
    return Inputs(jnp.stack(ws), jnp.stack(ms), jnp.stack(cs))


def random_support(
    key: jax.Array,
    bar_size: int,
    center: jax.Array | tuple[float, float] = (0.0, 0.0),
    stdev: float | jax.Array = 0.1,
    dtype=jnp.float32,
) -> GMM:
    """``bar_size`` random Gaussians (the recipe of OTT's ``GaussianMixture.from_random``):
    means ``center + stdev N(0, I)``, covariances ``R diag(stdev exp(N(0, 1))) R^T`` with
    uniform random rotations ``R``; uniform weights."""
    k_mean, k_rot, k_eig = jax.random.split(key, 3)
    means = jnp.asarray(center, dtype) + stdev * jax.random.normal(k_mean, (bar_size, 2), dtype)
    theta = jax.random.uniform(k_rot, (bar_size,), dtype, 0.0, jnp.pi)
    c, s = jnp.cos(theta), jnp.sin(theta)
    rot = jnp.stack([jnp.stack([c, -s], -1), jnp.stack([s, c], -1)], -2)
    eig = stdev * jnp.exp(jax.random.normal(k_eig, (bar_size, 2), dtype))
    covs = jnp.einsum("bij,bj,bkj->bik", rot, eig, rot)
    return GMM(jnp.full((bar_size,), 1.0 / bar_size, dtype), means, covs)


def support_from_input(inputs: Inputs, m: int, bar_size: int, key: jax.Array) -> GMM:
    """A support from input ``m``: its components by decreasing weight, cycled when
    ``bar_size`` exceeds its number of components; repeats are moved by 1e-2 of the
    component's standard deviation (identical support points would stay identical)."""
    w = inputs.weights[m]
    order = jnp.argsort(-w)
    n_live = jnp.maximum(jnp.sum(w > 0), 1)
    pick = order[jnp.arange(bar_size) % n_live]
    means, covs = inputs.means[m][pick], inputs.covs[m][pick]
    repeat = (jnp.arange(bar_size) >= n_live)[:, None]
    scale = jnp.sqrt(jnp.trace(covs, axis1=-2, axis2=-1) / 2.0)[:, None]
    jitter = 1e-2 * scale * jax.random.normal(key, means.shape, means.dtype)
    means = jnp.where(repeat, means + jitter, means)
    return GMM(jnp.full((bar_size,), 1.0 / bar_size, means.dtype), means, covs)


def init(
    support: GMM,
    inputs: Inputs,
    lambdas: jax.Array,
    epsilon: float | jax.Array = 0.1,
    threshold: float | jax.Array = 1e-3,
    config: BarycenterConfig | None = None,
) -> BarycenterState:
    """State from an initial support (its weights are ignored: the barycenter's are uniform)."""
    config = BarycenterConfig() if config is None else config
    dtype = support.means.dtype
    m, k = inputs.weights.shape
    b = support.means.shape[0]
    return BarycenterState(
        means=support.means,
        covs=support.covs,
        f=jnp.zeros((m, b), dtype),
        g=jnp.zeros((m, k), dtype),
        coupling=jnp.zeros((m, b, k), dtype),
        costs=-jnp.ones(config.max_iterations, dtype),
        iteration=jnp.asarray(0, jnp.int32),
        converged=jnp.asarray(False),
        done=jnp.asarray(False),
        warm=jnp.asarray(False),
        lambdas=jnp.asarray(lambdas, dtype),
        epsilon=jnp.asarray(epsilon, dtype),
        threshold=jnp.asarray(threshold, dtype),
    )


def restart(state: BarycenterState, lambdas: jax.Array, epsilon: jax.Array) -> BarycenterState:
    """New knobs, iterations from 0 (OTT's stopping rule anew), the support and potentials
    kept as a warm start: what a slider move does while the barycenter animates."""
    return state._replace(
        costs=-jnp.ones_like(state.costs),
        iteration=jnp.zeros_like(state.iteration),
        converged=jnp.asarray(False),
        done=jnp.asarray(False),
        lambdas=jnp.asarray(lambdas, state.lambdas.dtype),
        epsilon=jnp.asarray(epsilon, state.epsilon.dtype),
    )


def _update(state: BarycenterState, inputs: Inputs, config: BarycenterConfig):
    b = state.means.shape[0]
    a = jnp.full((b,), 1.0 / b, state.means.dtype)

    def solve(w, mu, cov, f, g):
        cost = bures_cost_matrix(state.means, state.covs, mu, cov)
        init = (f, g) if config.warm_start else None
        if config.solver == "newton":
            # the first step has no potentials yet: start cold (epsilon continuation)
            warm = state.warm
            return newton_ot(
                cost, a, w, state.epsilon, threshold=config.ot_threshold, init=init, warm=warm
            )
        return sinkhorn(
            cost,
            a,
            w,
            state.epsilon,
            1.0,
            threshold=config.ot_threshold,
            init=init,
            max_iterations=config.max_sinkhorn_iterations,
            unroll=config.unroll,
        )

    outs = jax.vmap(solve)(inputs.weights, inputs.means, inputs.covs, state.f, state.g)
    lam = state.lambdas / jnp.sum(state.lambdas)
    cost = jnp.sum(lam * outs.reg_ot_cost)
    p = outs.coupling  # [M, B, K]

    def bary(weights, covs):
        return bures_barycenter_fixed(covs, weights / jnp.sum(weights), config.bures_iterations)

    # projections of the support onto each input: [M, B, 2], [M, B, 2, 2]
    row = jnp.sum(p, axis=-1, keepdims=True)
    proj_means = jnp.einsum("mbk,mkd->mbd", p, inputs.means) / row
    proj_covs = jax.vmap(lambda pm, cm: jax.vmap(lambda w: bary(w, cm))(pm))(p, inputs.covs)
    means = jnp.einsum("m,mbd->bd", lam, proj_means)
    covs = jax.vmap(lambda cs: bary(lam, cs))(jnp.swapaxes(proj_covs, 0, 1))
    return means, covs, outs, cost


def step(state: BarycenterState, inputs: Inputs, config: BarycenterConfig) -> BarycenterState:
    """One barycenter iteration (no-op once ``done``)."""
    means, covs, outs, cost = _update(state, inputs, config)
    i = state.iteration
    costs = state.costs.at[jnp.minimum(i, config.max_iterations - 1)].set(cost)
    prev = costs[jnp.maximum(i - 1, 0)]
    close = jnp.abs(cost - prev) <= 1e-8 + state.threshold * jnp.abs(cost)
    n = i + 1
    finite = jnp.isfinite(cost) & jnp.all(jnp.isfinite(means)) & jnp.all(jnp.isfinite(covs))
    converged = (n >= 2) & close & finite
    done = (n >= config.max_iterations) | ~finite | ((n >= config.min_iterations) & converged)
    new = BarycenterState(
        means=jnp.where(finite, means, state.means),
        covs=jnp.where(finite, covs, state.covs),
        f=jnp.where(finite, outs.f, state.f),
        g=jnp.where(finite, outs.g, state.g),
        coupling=outs.coupling,
        costs=costs,
        iteration=n,
        converged=converged,
        done=done,
        warm=state.warm | finite,
        lambdas=state.lambdas,
        epsilon=state.epsilon,
        threshold=state.threshold,
    )
    return jax.tree_util.tree_map(lambda x, y: jnp.where(state.done, x, y), state, new)


def run(state: BarycenterState, inputs: Inputs, config: BarycenterConfig, k: int):
    """Up to ``k`` steps in a ``lax.while_loop`` that stops once ``done`` (jit with
    ``config`` static; ``k`` may be traced)."""

    def cond(carry):
        s, i = carry
        return (i < k) & ~s.done

    out, _ = jax.lax.while_loop(cond, lambda c: (step(c[0], inputs, config), c[1] + 1), (state, 0))
    return out


def barycenter_mixture(state: BarycenterState) -> GMM:
    """The current barycenter as a mixture (uniform weights)."""
    b = state.means.shape[0]
    return GMM(jnp.full((b,), 1.0 / b, state.means.dtype), state.means, state.covs)


def neg_log_density(gmm: GMM, xs: jax.Array, ys: jax.Array) -> jax.Array:
    """``-log p`` of a mixture on the grid ``xs [W] x ys [H]`` -> ``[H, W]`` (for contours)."""
    gx, gy = jnp.meshgrid(xs, ys)
    pts = jnp.stack([gx.ravel(), gy.ravel()], -1)
    return -log_prob(gmm, pts).reshape(gx.shape)
