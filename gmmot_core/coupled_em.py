"""Coupled EM (Delon & Desolneux 2020; OTT-JAX ``fit_gmm_pair``) as an init / step / run solver.

Fits one mixture per cloud while penalising the (unbalanced) entropic MW2 between them:
each EM iteration computes posteriors (E-step) and then takes ``m_steps`` Adam ascent
steps on::

    objective = Q0 + Q1 - weight_transport * reg_ot_cost(OT_eps,tau(C(gmm0, gmm1), w0, w1))

over OTT's unconstrained parameters (Adam state reset at every M-step, as OTT does).
The entropic OT is solved by Sinkhorn (OTT's solver, capped at 2000 sweeps) or, by
default when balanced (tau = 1, a traced branch), by damped Newton
(:mod:`~gmmot_core.newton_ot`), which converges where Sinkhorn hits its cap (costs
hundreds of times epsilon).
Q depends on the points only through per-component sufficient statistics computed once
per E-step, so the M-step costs O(K^2), not O(N K).

``config`` is static; ``epsilon``, ``tau``, ``weight_transport``, ``learning_rate`` and
the Sinkhorn threshold are traced leaves of ``state.knobs``: moving them never
recompiles. Failures are values: ``state.status`` is a bitmask (see ``STATUS_TEXT``) and a
step that produces non-finite parameters is rolled back to the last good mixtures.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from gmmot_core.gaussians import bures_cost_matrix
from gmmot_core.gmm_ot import CouplingReport, report
from gmmot_core.mixture import (
    GMM,
    PointFeatures,
    SuffStats,
    expected_log_likelihood,
    point_features,
    suff_stats_from_features,
)
from gmmot_core.newton_ot import newton_ot
from gmmot_core.parametrization import RawGMM, from_raw, to_raw
from gmmot_core.sinkhorn import sinkhorn

__all__ = [
    "STATUS_TEXT",
    "CoupledEMConfig",
    "CoupledEMState",
    "Knobs",
    "PairData",
    "Traces",
    "coupling_report",
    "describe_status",
    "init",
    "mixtures",
    "run",
    "step",
]

# status bits (a step never raises; these say what went wrong)
NONFINITE_POINTS = 1  # some points had NaN/inf coordinates or weights: they were ignored
EMPTY_DATA = 2  # a cloud has no usable point (total weight 0)
ROLLED_BACK = 4  # the M-step produced non-finite parameters: last good mixtures kept
SINKHORN_NOT_CONVERGED = 8  # the last OT solve stopped before its threshold (informative)
BAD_KNOBS = 16  # epsilon <= 0, tau outside (0, 1], or a non-finite knob: step skipped

STATUS_TEXT = {
    NONFINITE_POINTS: "points with NaN/inf coordinates or weights were ignored",
    EMPTY_DATA: "a cloud has no usable point",
    ROLLED_BACK: "the update diverged (non-finite parameters); the last good mixtures are kept",
    SINKHORN_NOT_CONVERGED: "the OT solve (Sinkhorn or Newton) stopped before its threshold",
    BAD_KNOBS: "epsilon must be > 0, tau in (0, 1] and all knobs finite; step skipped",
}


def describe_status(status: int) -> list[str]:
    """Human-readable messages for a status bitmask (host side)."""
    return [text for bit, text in STATUS_TEXT.items() if int(status) & bit]


class CoupledEMConfig(NamedTuple):
    """Static settings (hashable; a change recompiles).

    ``em_steps``: EM iterations per :func:`run` call; ``m_steps``: Adam steps per M-step;
    ``max_sinkhorn_iterations`` / ``inner_iterations``: Sinkhorn caps (OTT: 2000 / 10);
    ``solver``: ``"auto"`` (Newton when tau = 1, Sinkhorn otherwise; the branch is on the
    traced tau) or ``"sinkhorn"`` (always OTT's solver); ``warm_start``: start each solve
    from the previous potentials (faster; OTT starts from 0: ``solver="sinkhorn",
    warm_start=False`` replays OTT exactly); ``lock_gmm1``: keep mixture 1 fixed;
    ``trace_length``: capacity of the preallocated traces.
    """

    em_steps: int = 1
    m_steps: int = 20
    max_sinkhorn_iterations: int = 2000
    inner_iterations: int = 10
    solver: str = "auto"
    warm_start: bool = True
    lock_gmm1: bool = False
    trace_length: int = 512


class Knobs(NamedTuple):
    """Continuous knobs, all traced scalars: change them freely between calls."""

    epsilon: jax.Array
    tau: jax.Array
    weight_transport: jax.Array
    learning_rate: jax.Array
    threshold: jax.Array

    @classmethod
    def make(
        cls,
        epsilon: float = 1e-2,
        tau: float = 1.0,
        weight_transport: float = 1e-2,
        learning_rate: float = 1e-3,
        threshold: float = 1e-3,
        dtype=jnp.float32,
    ) -> Knobs:
        return cls(
            *(
                jnp.asarray(v, dtype)
                for v in (epsilon, tau, weight_transport, learning_rate, threshold)
            )
        )


class PairData(NamedTuple):
    """The two clouds as E-step features (``PointFeatures`` of ``[N0, 2]`` and ``[N1, 2]``)."""

    feats0: PointFeatures
    feats1: PointFeatures

    @classmethod
    def make(cls, points0, points1, weights0=None, weights1=None) -> PairData:
        """Features of both clouds; NaN/inf rows are dropped (reported in the status)."""
        p0, p1 = jnp.asarray(points0), jnp.asarray(points1)
        w0 = None if weights0 is None else jnp.asarray(weights0, p0.dtype)
        w1 = None if weights1 is None else jnp.asarray(weights1, p1.dtype)
        return cls(_features(p0, w0), _features(p1, w1))


_features = jax.jit(point_features)


class Traces(NamedTuple):
    """Per-iteration values ``[T]`` evaluated before that iteration's M-step (NaN = not yet)."""

    q0: jax.Array
    q1: jax.Array
    transport: jax.Array
    objective: jax.Array
    sinkhorn_iters: jax.Array  # iterations of the OT solve (Sinkhorn sweeps or Newton steps)


class CoupledEMState(NamedTuple):
    """Everything the next step needs.

    ``raw0``, ``raw1``: the mixtures in OTT's parametrisation; ``adam``: optimiser state of
    the last M-step; ``f [K0]``, ``g [K1]``: Sinkhorn potentials (warm start);
    ``iteration``; ``traces``; ``status`` (bitmask of the last step); ``first_bad``: EM
    iteration of the first roll-back (-1 if none); ``knobs``; ``warm``: whether ``f``,
    ``g`` come from a solve (Newton starts cold, with epsilon continuation, until then).
    """

    raw0: RawGMM
    raw1: RawGMM
    adam: optax.OptState
    f: jax.Array
    g: jax.Array
    iteration: jax.Array
    traces: Traces
    status: jax.Array
    first_bad: jax.Array
    knobs: Knobs
    warm: jax.Array


def _optimizer(learning_rate: jax.Array) -> optax.GradientTransformation:
    # as OTT: Adam(b1=.9, b2=.999, eps=1e-8) then a *positive* scale (ascent)
    return optax.chain(optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8), optax.scale(learning_rate))


def _params(raw0: RawGMM, raw1: RawGMM, config: CoupledEMConfig):
    return (raw0,) if config.lock_gmm1 else (raw0, raw1)


def init(
    gmm0: GMM, gmm1: GMM, knobs: Knobs, config: CoupledEMConfig | None = None
) -> CoupledEMState:
    """Solver state from two initial mixtures (weights > 0, SPD covariances)."""
    config = CoupledEMConfig() if config is None else config
    raw0, raw1 = to_raw(gmm0), to_raw(gmm1)
    dtype = raw0.loc.dtype
    nan = jnp.full((config.trace_length,), jnp.nan, dtype)
    traces = Traces(nan, nan, nan, nan, jnp.zeros((config.trace_length,), jnp.int32))
    adam = _optimizer(knobs.learning_rate).init(_params(raw0, raw1, config))
    return CoupledEMState(
        raw0=raw0,
        raw1=raw1,
        adam=adam,
        f=jnp.zeros(gmm0.n_components, dtype),
        g=jnp.zeros(gmm1.n_components, dtype),
        iteration=jnp.asarray(0, jnp.int32),
        traces=traces,
        status=jnp.asarray(0, jnp.int32),
        first_bad=jnp.asarray(-1, jnp.int32),
        knobs=Knobs(*(jnp.asarray(k, dtype) for k in knobs)),
        warm=jnp.asarray(False),
    )


def mixtures(state: CoupledEMState) -> tuple[GMM, GMM]:
    """The two current mixtures (constrained parameters)."""
    return from_raw(state.raw0), from_raw(state.raw1)


def e_step(raw: RawGMM, feats: PointFeatures) -> SuffStats:
    """Posteriors of the current mixture -> per-component statistics."""
    return suff_stats_from_features(from_raw(raw), feats)[0]


def _solve(cost, a, b, knobs: Knobs, init_fg, warm, config: CoupledEMConfig):
    """The entropic OT of ``cost [K0, K1]`` between weights ``a``, ``b`` (a SinkhornOutput)."""
    init = init_fg if config.warm_start else None

    def by_sinkhorn(_):
        return sinkhorn(
            cost,
            a,
            b,
            knobs.epsilon,
            knobs.tau,
            threshold=knobs.threshold,
            init=init,
            max_iterations=config.max_sinkhorn_iterations,
            inner_iterations=config.inner_iterations,
        )

    def by_newton(_):
        return newton_ot(cost, a, b, knobs.epsilon, threshold=knobs.threshold, init=init, warm=warm)

    if config.solver == "sinkhorn":
        return by_sinkhorn(None)
    return jax.lax.cond(knobs.tau >= 1.0, by_newton, by_sinkhorn, None)


def _objective(params, fixed_raw1, stats0, stats1, knobs, init_fg, warm, config):
    raw0 = params[0]
    raw1 = fixed_raw1 if config.lock_gmm1 else params[1]
    g0, g1 = from_raw(raw0), from_raw(raw1)
    q0 = expected_log_likelihood(g0, stats0)
    q1 = expected_log_likelihood(g1, stats1)
    cost = bures_cost_matrix(g0.means, g0.covs, g1.means, g1.covs)
    out = _solve(cost, g0.weights, g1.weights, knobs, init_fg, warm, config)
    objective = q0 + q1 - knobs.weight_transport * out.reg_ot_cost
    return objective, (q0, q1, out.reg_ot_cost, out.n_iters, out.converged, out.f, out.g)


def _m_step(state: CoupledEMState, stats0, stats1, config: CoupledEMConfig, m_steps):
    opt = _optimizer(state.knobs.learning_rate)
    params = _params(state.raw0, state.raw1, config)
    grad_fn = jax.value_and_grad(partial(_objective, config=config), has_aux=True)

    def body(i, carry):
        params, adam, f, g, first, _ = carry
        warm = state.warm | (i > 0)  # after the first solve, Newton starts from its potentials
        args = (params, state.raw1, stats0, stats1, state.knobs, (f, g), warm)
        (value, aux), grads = grad_fn(*args)
        updates, adam = opt.update(grads, adam, params)
        params = optax.apply_updates(params, updates)
        *_, f_new, g_new = aux
        first = _select(i == 0, (value, aux[:5]), first)  # values before the first step
        return params, adam, f_new, g_new, first, aux[4]

    fg = (state.f, state.g)
    shapes = jax.eval_shape(grad_fn, params, state.raw1, stats0, stats1, state.knobs, fg, True)
    value, aux = jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, x.dtype), shapes[0])
    carry0 = (params, opt.init(params), state.f, state.g, (value, aux[:5]), jnp.bool_(False))
    # a traced m_steps (the app's slider) makes this a while loop: no recompile per value
    params, adam, f, g, first, converged_last = jax.lax.fori_loop(0, m_steps, body, carry0)
    return params, adam, f, g, first, converged_last


def _tree_finite(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def _select(pred, a, b):
    return jax.tree_util.tree_map(lambda x, y: jnp.where(pred, x, y), a, b)


def step(
    state: CoupledEMState, data: PairData, config: CoupledEMConfig, m_steps=None
) -> CoupledEMState:
    """One EM iteration: E-step, trace values, ``m_steps`` Adam steps (default
    ``config.m_steps``; a traced int reuses one executable for any count); never raises."""
    f0, f1 = data.feats0, data.feats1
    dropped = (f0.n_dropped > 0) | (f1.n_dropped > 0)
    empty = (jnp.sum(f0.weights) <= 0) | (jnp.sum(f1.weights) <= 0)
    k = state.knobs
    bad_knobs = ~(
        jnp.isfinite(jnp.stack(list(k))).all() & (k.epsilon > 0) & (k.tau > 0) & (k.tau <= 1)
    )

    stats0 = e_step(state.raw0, f0)
    stats1 = e_step(state.raw1, f1)
    m_steps = config.m_steps if m_steps is None else m_steps
    params, adam, f, g, first, sk_conv = _m_step(state, stats0, stats1, config, m_steps)
    value, (q0, q1, transport, n_iters, _) = first
    new_raw0 = params[0]
    new_raw1 = state.raw1 if config.lock_gmm1 else params[1]

    good = _tree_finite((new_raw0, new_raw1)) & jnp.isfinite(value) & ~empty & ~bad_knobs
    raw0, raw1 = _select(good, (new_raw0, new_raw1), (state.raw0, state.raw1))
    adam = _select(good, adam, state.adam)
    f = jnp.where(good & jnp.isfinite(f), f, state.f)
    g = jnp.where(good & jnp.isfinite(g), g, state.g)

    i = state.iteration
    idx = jnp.minimum(i, config.trace_length - 1)
    tr = state.traces
    traces = Traces(
        tr.q0.at[idx].set(q0),
        tr.q1.at[idx].set(q1),
        tr.transport.at[idx].set(transport),
        tr.objective.at[idx].set(value),
        tr.sinkhorn_iters.at[idx].set(n_iters),
    )
    status = (
        jnp.where(dropped, NONFINITE_POINTS, 0)
        | jnp.where(empty, EMPTY_DATA, 0)
        | jnp.where(bad_knobs, BAD_KNOBS, 0)
        | jnp.where(~good & ~empty & ~bad_knobs, ROLLED_BACK, 0)
        | jnp.where(sk_conv, 0, SINKHORN_NOT_CONVERGED)
    ).astype(jnp.int32)
    first_bad = jnp.where((state.first_bad < 0) & ~good, i, state.first_bad)
    warm = state.warm | good
    return CoupledEMState(
        raw0, raw1, adam, f, g, i + 1, traces, status, first_bad, state.knobs, warm
    )


def run(
    state: CoupledEMState, data: PairData, config: CoupledEMConfig, counts=None
) -> CoupledEMState:
    """``config.em_steps`` EM iterations of ``config.m_steps`` Adam steps each, fused in one
    loop (jit with config static). ``counts = (em_steps, m_steps)`` as traced ints
    overrides both: the app's sliders then never recompile."""
    em_steps, m_steps = (config.em_steps, config.m_steps) if counts is None else counts
    return jax.lax.fori_loop(0, em_steps, lambda _, s: step(s, data, config, m_steps), state)


def coupling_report(state: CoupledEMState, config: CoupledEMConfig) -> CouplingReport:
    """The coupling of the current mixtures under the state's knobs, by the run's own
    solver and warm start (for views and exports; jit-safe)."""
    g0, g1 = mixtures(state)
    k = state.knobs
    cost = bures_cost_matrix(g0.means, g0.covs, g1.means, g1.covs)
    out = _solve(cost, g0.weights, g1.weights, k, (state.f, state.g), state.warm, config)
    return report(cost, out, g0.weights, g1.weights, k.epsilon, k.tau)
