"""Balanced entropic OT for small dense problems by damped Newton on the semi-dual.

Sinkhorn needs thousands of sweeps once ``epsilon`` is small against the cost range
(the barycenter notebook: eps = 0.1, costs ~ 3e3: OTT stops at its 2000-sweep cap,
unconverged). Here the row potential is eliminated in closed form,

    f_i(g) = eps log a_i - eps LSE_j((g_j - C_ij) / eps),
    P_ij  = exp((f_i + g_j - C_ij) / eps)          (rows sum to a exactly),

and the concave semi-dual ``S(g) = <a, f(g)> + <b, g>`` is maximised by Newton's
method in ``g [K]``: gradient ``b - P^T 1``, Hessian ``-L / eps`` with the weighted
graph Laplacian ``L = diag(W 1) - W``, ``W_jk = sum_i P_ij P_ik / a_i`` (j != k; null
vector 1: the gauge). The step length is found by bisection on the sign of the slope
``<d, grad S>`` (monotone: ``S`` is concave) until the column error shrinks (a residual
test: ``S`` itself cannot resolve the last digits in float32 when ``C / eps ~ 1e4``); a
full step still short of the maximum is taken when it moves ``g`` by more than ``eps``,
so a step across a plateau of ``L ~ 0`` (a warm start on the wrong side of a small
mass to move) neither skips the narrow window where the error drops nor stalls before
it. A cold start begins at ``eps = max(eps, cost spread)`` and scales eps down by
``SCALING`` each time a stage is solved to ``STAGE_TOLERANCE``; a stall away from the
solution (a near-singular ``L``: rows no longer split between columns), or a rejected
step longer than ``eps``, raises eps again. With K <= a few dozen columns an iteration
is a ``[B, K]`` exponential and a ``K x K`` solve: ~10-35 iterations cold, a few warm.

Zero entries of ``b`` (padding) are excluded (their ``g`` is ``-inf``); ``a`` must be
positive. The output has the fields and conventions of :class:`SinkhornOutput`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg

from gmmot_core.sinkhorn import SinkhornOutput, reg_ot_cost

__all__ = ["newton_ot"]

SCALING = 0.25  # epsilon continuation factor per stage
STAGE_TOLERANCE = 0.05  # L1 column error at which an intermediate stage is done
FLOOR_FACTOR = 10.0  # a stall below this many thresholds is the rounding floor
MAX_RAISES = 8  # epsilon raises when Newton stalls far from the solution


def _plan(g, cost, log_a, eps):
    """Row potential ``[B]`` and coupling ``[B, K]`` (exact row marginals) for ``g [K]``."""
    z = (g[None, :] - cost) / eps
    f = eps * (log_a - jax.nn.logsumexp(z, axis=1))
    return f, jnp.exp(z + (f / eps)[:, None])


def newton_ot(
    cost: jax.Array,
    a: jax.Array,
    b: jax.Array,
    epsilon: float | jax.Array,
    *,
    threshold: float | jax.Array = 1e-3,
    init: tuple[jax.Array, jax.Array] | None = None,
    warm: bool | jax.Array = True,
    max_iterations: int = 100,
    max_trials: int = 32,
) -> SinkhornOutput:
    """Solve balanced entropic OT between ``a [B] > 0`` and ``b [K] >= 0`` for ``cost [B, K]``.

    ``threshold`` (traced) bounds the L1 column-marginal error, as OTT's Sinkhorn;
    ``init``: warm-start potentials ``(f [B], g [K])`` (only ``g`` is used), taken
    where ``warm`` (traced bool) holds; ``max_trials`` bounds the line search's plan
    evaluations per iteration. A stall at the rounding floor stops the loop
    (``converged`` then tells whether ``threshold`` was met); so do non-finite values.
    ``n_iters`` counts Newton iterations (``max_iterations`` when stopped by a stall).
    """
    dtype = cost.dtype
    eps = jax.lax.stop_gradient(jnp.asarray(epsilon, dtype))
    threshold = jnp.asarray(threshold, dtype)
    c_ = jax.lax.stop_gradient(cost)
    a_, b_ = jax.lax.stop_gradient(a), jax.lax.stop_gradient(b)
    log_a = jnp.log(a_)
    live = b_ > 0
    k = b_.shape[0]
    # padding columns: potential -inf (no mass), cost 0 so no inf - inf
    c_ = jnp.where(live[None, :], c_, 0.0)

    warm = jnp.asarray(init is not None) & jnp.asarray(warm)
    g0 = jnp.zeros_like(b_) if init is None else jax.lax.stop_gradient(init[1])
    g0 = jnp.where(warm & jnp.isfinite(g0), g0, 0.0)
    g0 = jnp.where(live, g0 - jnp.max(jnp.where(live, g0, -jnp.inf)), -jnp.inf)
    spread = jnp.max(jnp.where(live[None, :], c_, -jnp.inf)) - jnp.min(
        jnp.where(live[None, :], c_, jnp.inf)
    )
    eps0 = jnp.where(warm, eps, jnp.maximum(eps, spread))
    stage_tol = jnp.maximum(threshold, STAGE_TOLERANCE)

    def error(p):
        return jnp.sum(jnp.where(live, jnp.abs(jnp.sum(p, axis=0) - b_), 0.0))

    def direction(p, e_cur):
        col = jnp.sum(p, axis=0)
        # L = diag(W 1) - W off the diagonal: no cancellation (diag(col) -
        # P^T diag(1/a) P loses positive semi-definiteness in float32)
        w = (p / a_[:, None]).T @ p
        w = jnp.where(jnp.eye(k, dtype=bool), 0.0, w)
        lap = jnp.diag(jnp.sum(w, axis=1)) - w
        scale = jnp.max(col)
        # gauge: + mean-projection on the live columns; padding rows/cols -> identity
        ones = live.astype(dtype) / jnp.sqrt(jnp.maximum(jnp.sum(live), 1))
        lap = lap + scale * ones[:, None] * ones[None, :]
        lap = lap + 1e-6 * scale * jnp.eye(k, dtype=dtype)  # disconnected columns
        lap = jnp.where(live[:, None] & live[None, :], lap, jnp.eye(k, dtype=dtype))
        rhs = jnp.where(live, e_cur * (b_ - col), 0.0)
        # symmetric positive definite: Cholesky (lowers and compiles lighter than LU)
        d = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(lap), rhs)
        return jnp.where(live, d, 0.0)

    def slope(p, d):
        """``<d, grad S>`` at the plan ``p``: non-increasing along d (S is concave)."""
        return jnp.sum(jnp.where(live, d * (b_ - jnp.sum(p, axis=0)), 0.0))

    def trial(c):
        # bisection on the sign of the slope: bracket [lo, hi] around the maximum of S
        # along d, so a step that must cross a plateau of L ~ 0 (a mass too small for
        # the stage to see) lands in the narrow window where the error drops, which
        # halving from t = 1 skips over
        g, d, e_cur, lo, hi, t, _, p_t, _, n = c
        past = slope(p_t, d) < 0
        lo, hi = jnp.where(past, lo, t), jnp.where(past, t, hi)
        t = 0.5 * (lo + hi)
        f_t, p_t = _plan(g + t * d, c_, log_a, e_cur)
        return g, d, e_cur, lo, hi, t, f_t, p_t, error(p_t), n + 1

    def body(carry):
        g, f, p, err, e_cur, it, raises = carry
        d = direction(p, e_cur)
        f1, p1 = _plan(g + d, c_, log_a, e_cur)

        long = jnp.max(jnp.abs(d)) > e_cur

        def accepted(c):
            # the error drops enough, or a full step that stays short of the maximum
            # along d and moves g by more than e_cur (crossing a plateau; at the
            # rounding floor steps are short and the slope is noise)
            t, p_t, e_t = c[5], c[7], c[8]
            short_of_max = (t == 1.0) & (slope(p_t, d) >= 0) & long
            return (e_t <= (1.0 - 0.25 * t) * err) | short_of_max

        def worse(c):
            return ~accepted(c) & (c[9] < max_trials)

        zero, one = jnp.asarray(0.0, dtype), jnp.asarray(1.0, dtype)
        start = (g, d, e_cur, zero, one, one, f1, p1, error(p1), 0)
        end = jax.lax.while_loop(worse, trial, start)
        *_, t, f_t, p_t, e_t, _ = end
        ok = accepted(end) & jnp.isfinite(e_t)
        g = jnp.where(ok, g + t * d, g)
        f, p, err = (jnp.where(ok, x, y) for x, y in ((f_t, f), (p_t, p), (e_t, err)))
        # continuation: stuck (a near-singular L) away from the solution -> larger eps
        # (at most MAX_RAISES times); a stage solved -> smaller eps (down to eps);
        # stuck within FLOOR_FACTOR * threshold at eps with a short step: the rounding
        # floor -> stop. A rejected step longer than e_cur is not the floor, however
        # small err is (the plan's graph came apart): raise eps as when far away
        up = ~ok & ((err > FLOOR_FACTOR * threshold) | long) & (raises < MAX_RAISES)
        down = ~up & (e_cur > eps) & ((err <= stage_tol) | ~ok)
        stop = ~ok & ~up & ~down
        e_new = jnp.where(up, e_cur / SCALING, e_cur)
        e_new = jnp.where(down, jnp.maximum(eps, e_cur * SCALING), e_new)
        moved = up | down
        f2, p2 = _plan(g, c_, log_a, e_new)
        f, p = jnp.where(moved, f2, f), jnp.where(moved, p2, p)
        err = jnp.where(moved, error(p2), err)
        it = jnp.where(stop, max_iterations, it + 1)
        return g, f, p, err, e_new, it, raises + up

    def cond(carry):
        _, _, _, err, e_cur, it, _ = carry
        todo = (err > threshold) | (e_cur > eps)
        return (it < max_iterations) & todo & jnp.isfinite(err)

    f0, p0 = _plan(g0, c_, log_a, eps0)
    carry = (g0, f0, p0, error(p0), eps0, 0, 0)
    g, f, _, err, e_cur, n_iters, _ = jax.lax.while_loop(cond, body, carry)
    converged = jnp.isfinite(err) & (err <= threshold) & (e_cur <= eps)

    # envelope theorem: the cost is evaluated at fixed (stopped) potentials
    g = jnp.where(live, g, -jnp.inf)
    safe_cost = jnp.where(live[None, :], cost, 0.0)
    coupling = jnp.where(live[None, :], jnp.exp((f[:, None] + g[None, :] - safe_cost) / eps), 0.0)
    cost_value = reg_ot_cost(f, g, safe_cost, a, b, eps)
    return SinkhornOutput(f, g, coupling, cost_value, err, n_iters, converged)
