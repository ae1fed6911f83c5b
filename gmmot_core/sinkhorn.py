"""Log-domain Sinkhorn for small dense problems, balanced and unbalanced.

Semantics follow OTT-JAX 0.6.0 ``Sinkhorn()`` with its defaults, so numbers agree
with the peer: potentials start at 0 (or a warm start), each iteration updates
``g`` then ``f``::

    g <- tau_b (eps log b - eps LSE_i((f_i + g_j - C_ij) / eps) + g_j)
    f <- tau_a (eps log a - eps LSE_j((f_i + g_j - C_ij) / eps) + f_i)

the coupling is ``P = exp((f + g - C) / eps)``, the error is checked every
``inner_iterations`` (L1 column-marginal error when balanced, OTT's gradient
residual when unbalanced), and

    reg_ot_cost = div_a + div_b + eps (sum a sum b - sum P)

with ``div = <a, f - eps log a>`` when balanced and
``-<a, phi*(-(f - eps log a), rho)>``, ``phi*(h, rho) = rho (exp(h / rho) - 1)``,
``rho = eps tau / (1 - tau)`` otherwise. ``tau`` in (0, 1] is traced: balanced and
unbalanced share one compiled function.

Differentiation is by the envelope theorem (Danskin): the loop runs on
stopped-gradient inputs and ``reg_ot_cost`` is evaluated at the fixed potentials,
so ``d reg_ot_cost / d C = P`` and the marginals get their partial derivatives.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

UNROLL = 2  # inner Sinkhorn updates per loop trip (compile time vs speed)

__all__ = ["SinkhornOutput", "reg_ot_cost", "rho_from_tau", "sinkhorn", "tau_from_rho"]


class SinkhornOutput(NamedTuple):
    """Result of :func:`sinkhorn`.

    ``f [K0]``, ``g [K1]``: dual potentials (``-inf`` where a weight is 0);
    ``coupling [K0, K1]``; ``reg_ot_cost []``; ``error []``: last optimality error;
    ``n_iters []`` (int); ``converged []`` (bool).
    """

    f: jax.Array
    g: jax.Array
    coupling: jax.Array
    reg_ot_cost: jax.Array
    error: jax.Array
    n_iters: jax.Array
    converged: jax.Array


def rho_from_tau(epsilon: jax.Array, tau: jax.Array) -> jax.Array:
    """KL marginal penalty ``rho = eps tau / (1 - tau)`` (``inf`` at tau = 1)."""
    return jnp.where(tau < 1.0, epsilon * tau / jnp.where(tau < 1.0, 1.0 - tau, 1.0), jnp.inf)


def tau_from_rho(epsilon: jax.Array, rho: jax.Array) -> jax.Array:
    """``tau = rho / (rho + eps)`` (1 for rho = inf)."""
    return jnp.where(jnp.isinf(rho), 1.0, rho / (rho + epsilon))


def _safe_log(x: jax.Array) -> jax.Array:
    pos = x > 0
    return jnp.where(pos, jnp.log(jnp.where(pos, x, 1.0)), -jnp.inf)


def _finite_or_zero(x: jax.Array) -> jax.Array:
    return jnp.where(jnp.isfinite(x), x, 0.0)


def _lse(centered: jax.Array, eps: jax.Array, axis: int) -> jax.Array:
    """``eps * logsumexp(centered / eps, axis)`` with -inf rows/columns kept at -inf."""
    return eps * jax.nn.logsumexp(centered / eps, axis=axis)


def _update_g(f, g, cost, log_b, eps, tau_b):
    app = _lse(f[:, None] + g[None, :] - cost, eps, 0) - _finite_or_zero(g)
    return tau_b * (eps * log_b - _finite_or_zero(app))


def _update_f(f, g, cost, log_a, eps, tau_a):
    app = _lse(f[:, None] + g[None, :] - cost, eps, 1) - _finite_or_zero(f)
    return tau_a * (eps * log_a - _finite_or_zero(app))


def _safe_rho(eps, tau):
    unb = tau < 1.0
    return unb, eps * tau / jnp.where(unb, 1.0 - tau, 1.0)


def _error(f, g, cost, a, b, eps, tau_a, tau_b):
    coupling = jnp.exp((f[:, None] + g[None, :] - cost) / eps)
    col = jnp.sum(coupling, axis=0)
    row = jnp.sum(coupling, axis=1)
    unb_a, rho_a = _safe_rho(eps, tau_a)
    unb_b, rho_b = _safe_rho(eps, tau_b)
    target_a = jnp.where(unb_a & (a > 0), a * jnp.exp(-_finite_or_zero(f) / rho_a), a)
    target_b = jnp.where(unb_b & (b > 0), b * jnp.exp(-_finite_or_zero(g) / rho_b), b)
    err_b = jnp.sum(jnp.abs(col - target_b))
    err_a = jnp.sum(jnp.abs(row - target_a))
    balanced = ~unb_a & ~unb_b
    return jnp.where(balanced, err_b, err_a + err_b)


def _divergence(f, marginal, eps, tau):
    supp = marginal > 0
    h = f - eps * _safe_log(marginal)
    h = jnp.where(supp, h, 0.0)
    unb, rho = _safe_rho(eps, tau)
    bal = jnp.sum(jnp.where(supp, marginal * h, 0.0))
    phi = rho * jnp.expm1(-jnp.where(unb, h, 0.0) / rho)  # no inf*0 in the unused branch
    ubal = -jnp.sum(jnp.where(supp, marginal * phi, 0.0))
    return jnp.where(unb, ubal, bal)


def reg_ot_cost(f, g, cost, a, b, epsilon, tau_a=1.0, tau_b=None) -> jax.Array:
    """OTT's ``reg_ot_cost`` (primal <P, C> + eps KL(P | ab^T) + rho KL marginals) from duals."""
    tau_b = tau_a if tau_b is None else tau_b
    coupling = jnp.exp((f[:, None] + g[None, :] - cost) / epsilon)
    return (
        _divergence(f, a, epsilon, tau_a)
        + _divergence(g, b, epsilon, tau_b)
        + epsilon * (jnp.sum(a) * jnp.sum(b) - jnp.sum(coupling))
    )


def sinkhorn(
    cost: jax.Array,
    a: jax.Array,
    b: jax.Array,
    epsilon: float | jax.Array,
    tau_a: float | jax.Array = 1.0,
    tau_b: float | jax.Array | None = None,
    *,
    threshold: float | jax.Array = 1e-3,
    init: tuple[jax.Array, jax.Array] | None = None,
    max_iterations: int = 2000,
    inner_iterations: int = 10,
    min_iterations: int = 0,
    unroll: int = UNROLL,
) -> SinkhornOutput:
    """Solve entropic OT between ``a [K0]`` and ``b [K1]`` for ``cost [K0, K1]``.

    ``epsilon``, ``tau_a``, ``tau_b`` (default ``tau_a``), ``threshold`` and ``init``
    (warm-start potentials ``(f [K0], g [K1])``) may be traced; the three iteration
    counts and ``unroll`` (updates per loop trip: speed vs compile time) are static.
    Non-finite errors stop the loop (``converged`` is False).
    """
    dtype = cost.dtype
    eps = jnp.asarray(epsilon, dtype)
    tau_a = jnp.asarray(tau_a, dtype)
    tau_b = tau_a if tau_b is None else jnp.asarray(tau_b, dtype)
    threshold = jnp.asarray(threshold, dtype)

    c_ = jax.lax.stop_gradient(cost)
    a_, b_ = jax.lax.stop_gradient(a), jax.lax.stop_gradient(b)
    eps_, ta_, tb_ = (jax.lax.stop_gradient(x) for x in (eps, tau_a, tau_b))
    log_a, log_b = _safe_log(a_), _safe_log(b_)

    if init is None:
        f0, g0 = jnp.zeros_like(a_), jnp.zeros_like(b_)
    else:
        f0, g0 = (jax.lax.stop_gradient(jnp.asarray(x, dtype)) for x in init)
        f0, g0 = _finite_or_zero(f0), _finite_or_zero(g0)
    f0 = jnp.where(a_ > 0, f0, -jnp.inf)
    g0 = jnp.where(b_ > 0, g0, -jnp.inf)

    def one(_, fg):
        f, g = fg
        g = _update_g(f, g, c_, log_b, eps_, tb_)
        return _update_f(f, g, c_, log_a, eps_, ta_), g

    def block(carry):
        f, g, _, it = carry
        f, g = jax.lax.fori_loop(0, inner_iterations, one, (f, g), unroll=unroll)
        err = _error(f, g, c_, a_, b_, eps_, ta_, tb_)
        return f, g, err, it + inner_iterations

    def cond(carry):
        _, _, err, it = carry
        keep = (it < min_iterations) | ((err >= threshold) & jnp.isfinite(err))
        return (it < max_iterations) & ((it == 0) | keep)

    init_carry = (f0, g0, jnp.asarray(jnp.inf, dtype), jnp.asarray(0, jnp.int32))
    f, g, err, n_iters = jax.lax.while_loop(cond, block, init_carry)
    converged = jnp.isfinite(err) & (err < threshold)

    # envelope theorem: the cost is evaluated at fixed (stopped) potentials
    coupling = jnp.exp((f[:, None] + g[None, :] - cost) / eps)
    cost_value = reg_ot_cost(f, g, cost, a, b, eps, tau_a, tau_b)
    return SinkhornOutput(f, g, coupling, cost_value, err, n_iters, converged)
