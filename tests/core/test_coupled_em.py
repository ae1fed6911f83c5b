"""Coupled EM vs OTT-JAX 0.6.0 ``fit_gmm_pair`` (replayed references and live runs).

Tolerances: OTT's numbers are float32 after 600 Adam steps, so we allow the issue's
bars: 2e-3 absolute on every traced value at every iteration, 2e-3 on final weights,
5e-3 on the final coupling. Live runs compare final mixtures to 2e-3 (same reason).
"""

import io
from contextlib import redirect_stdout

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import separated_pair
from ott.tools.gaussian_mixture import (
    fit_gmm,
    fit_gmm_pair,
    gaussian_mixture,
    gaussian_mixture_pair,
)

from gmmot_core import GMM, kmeans_pp, synthetic
from gmmot_core import coupled_em as ce

run = jax.jit(ce.run, static_argnames="config")


def _gmm(d) -> GMM:
    return GMM(*(jnp.asarray(d[k], jnp.float32) for k in ("weights", "means", "covs")))


def _ott_gmm(g: GMM):
    return gaussian_mixture.GaussianMixture.from_mean_cov_component_weights(
        g.means, g.covs, g.weights
    )


@pytest.mark.parametrize("name", ["balanced", "unbalanced"])
def test_replay_reference(reference, load_json, name):
    ref = load_json(f"coupled_em/{name}.json")
    pooled = _gmm(load_json("coupled_em/pooled_gmm.json"))
    p = ref["params"]
    data = ce.PairData.make(
        np.load(reference / "coupled_em/samples0.npy"),
        np.load(reference / "coupled_em/samples1.npy"),
    )
    cfg = ce.CoupledEMConfig(
        em_steps=p["em_steps"],
        m_steps=p["m_steps"],
        solver="sinkhorn",
        warm_start=False,
        trace_length=p["em_steps"],
    )
    knobs = ce.Knobs.make(p["epsilon"], p["tau"], p["weight_transport"], p["learning_rate"])
    out = run(ce.init(pooled, pooled, knobs, cfg), data, cfg)
    for key in ("q0", "q1", "transport", "objective"):
        theirs = np.array([row[key] for row in ref["trace"]])
        np.testing.assert_allclose(getattr(out.traces, key), theirs, atol=2e-3, err_msg=key)
    theirs_iters = [row["sinkhorn_n_iters"] for row in ref["trace"]]
    np.testing.assert_array_equal(out.traces.sinkhorn_iters, theirs_iters)
    g0, g1 = ce.mixtures(out)
    np.testing.assert_allclose(g0.weights, ref["gmm0"]["weights"], atol=2e-3)
    np.testing.assert_allclose(g1.weights, ref["gmm1"]["weights"], atol=2e-3)
    np.testing.assert_allclose(g0.means, ref["gmm0"]["means"], atol=2e-3)
    np.testing.assert_allclose(g1.covs, ref["gmm1"]["covs"], atol=2e-3)
    rep = ce.coupling_report(out, cfg)
    np.testing.assert_allclose(rep.cost, ref["cost_matrix"], rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(rep.coupling, np.array(ref["sinkhorn"]["coupling"]), atol=5e-3)
    np.testing.assert_allclose(
        rep.total_mass, float(ref["sinkhorn"]["coupling_total_mass"]), atol=5e-3
    )
    assert int(out.first_bad) == -1


def _live_case(k, tau, lock, weighted, seed):
    x0, x1 = synthetic.demo_pair(1500, seed)
    rng = np.random.default_rng(seed)
    w0 = rng.uniform(0.2, 2.0, len(x0)).astype(np.float32) if weighted else None
    w1 = rng.uniform(0.2, 2.0, len(x1)).astype(np.float32) if weighted else None
    pooled = np.concatenate([x0, x1])
    init = kmeans_pp(jax.random.key(seed), jnp.asarray(pooled), k)
    return x0, x1, w0, w1, init


def _ott_locked_fit(init, x0, x1, w0, w1, eps, tau, wt, lr, em_steps, m_steps):
    """OTT's fit loop with gmm1 held fixed, built from OTT's own pieces.

    OTT 0.6.0's ``lock_gmm1=True`` cannot run: ``GaussianMixturePair.tree_unflatten``
    pops ``gmm1`` from the shared ``aux_data`` so the next unflatten fails. This is
    ``_fit_model_em`` with the pair rebuilt around a constant gmm1 instead.
    """
    g1 = _ott_gmm(init)
    objective = fit_gmm_pair.get_objective_fn(weight_transport=wt)

    def f(g0, obs0, obs1):
        pair = gaussian_mixture_pair.GaussianMixturePair(g0, g1, epsilon=eps, tau=tau)
        return objective(pair, obs0, obs1)

    grad = jax.jit(jax.grad(f))
    value = jax.jit(f)
    opt = optax.chain(optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8), optax.scale(lr))
    e_step = jax.jit(fit_gmm.get_assignment_probs)
    obs1 = fit_gmm_pair.do_e_step(e_step, g1, x1, w1)
    g0 = _ott_gmm(init)
    for _ in range(em_steps):
        obs0 = fit_gmm_pair.do_e_step(e_step, g0, x0, w0)
        state = opt.init((g0,))
        for _ in range(m_steps):
            updates, state = opt.update((grad(g0, obs0, obs1),), state, (g0,))
            (g0,) = optax.apply_updates((g0,), updates)
    obs0 = fit_gmm_pair.do_e_step(e_step, g0, x0, w0)
    return gaussian_mixture_pair.GaussianMixturePair(g0, g1, eps, tau), value(g0, obs0, obs1)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("k", "tau", "lock", "weighted", "wt"),
    [(2, 0.8, False, True, 0.1), (5, 1.0, True, False, 0.05)],
    ids=["K2-unbalanced-point-weights", "K5-balanced-lock_gmm1"],
)
def test_live_ott(k, tau, lock, weighted, wt):
    em_steps, m_steps, eps = 4, 10, 0.1
    x0, x1, w0, w1, init = _live_case(k, tau, lock, weighted, seed=k)
    p0, p1 = jnp.asarray(x0), jnp.asarray(x1)
    q0 = jnp.ones(len(x0)) if w0 is None else jnp.asarray(w0)
    q1 = jnp.ones(len(x1)) if w1 is None else jnp.asarray(w1)
    if lock:
        theirs, loss = _ott_locked_fit(init, p0, p1, q0, q1, eps, tau, wt, 1e-2, em_steps, m_steps)
    else:
        pair = gaussian_mixture_pair.GaussianMixturePair(
            _ott_gmm(init), _ott_gmm(init), epsilon=eps, tau=tau
        )
        fit = fit_gmm_pair.get_fit_model_em_fn(weight_transport=wt, learning_rate=1e-2)
        with redirect_stdout(io.StringIO()):
            theirs, loss = fit(pair, p0, p1, q0, q1, em_steps=em_steps, m_steps=m_steps)
    cfg = ce.CoupledEMConfig(
        em_steps=em_steps,
        m_steps=m_steps,
        solver="sinkhorn",
        warm_start=False,
        lock_gmm1=lock,
        trace_length=em_steps + 1,
    )
    knobs = ce.Knobs.make(eps, tau, wt, 1e-2)
    data = ce.PairData.make(x0, x1, w0, w1)
    out = run(ce.init(init, init, knobs, cfg), data, cfg)
    g0, g1 = ce.mixtures(out)
    for ours, th in ((g0, theirs.gmm0), (g1, theirs.gmm1)):
        np.testing.assert_allclose(ours.weights, th.component_weights, atol=2e-3)
        np.testing.assert_allclose(ours.means, th.loc, atol=2e-3)
        np.testing.assert_allclose(ours.covs, th.covariance, atol=2e-3)
    if lock:
        np.testing.assert_array_equal(g1.means, init.means)
    # OTT's final loss = the objective after a fresh E-step = our next trace entry
    one = cfg._replace(em_steps=1)
    nxt = jax.jit(ce.run, static_argnames="config")(out, data, one)
    np.testing.assert_allclose(nxt.traces.objective[em_steps], loss, atol=2e-3)


def test_knobs_do_not_recompile():
    x0, x1 = synthetic.demo_pair(500, 0)
    data = ce.PairData.make(x0, x1)
    g = kmeans_pp(jax.random.key(0), jnp.asarray(np.concatenate([x0, x1])), 3)
    cfg = ce.CoupledEMConfig(em_steps=2, m_steps=5, trace_length=16)
    traces = []

    @jax.jit
    def go(state, data):
        traces.append(1)
        return ce.run(state, data, cfg)

    state = ce.init(g, g, ce.Knobs.make(), cfg)
    objectives = []
    for eps, tau, wt, lr in [(1e-2, 1.0, 1e-2, 1e-3), (0.5, 0.7, 1.0, 1e-2), (2.0, 0.2, 0.0, 0.1)]:
        state = state._replace(knobs=ce.Knobs.make(eps, tau, wt, lr))
        state = go(state, data)
        objectives.append(float(state.traces.objective[int(state.iteration) - 1]))
    assert len(traces) == 1
    assert len(set(np.round(objectives, 6))) == 3


def _state_for(x0, x1, k=3, **knobs):
    data = ce.PairData.make(x0, x1)
    g0 = kmeans_pp(jax.random.key(0), jnp.asarray(synthetic.demo_pair(300, 1)[0]), k)
    cfg = ce.CoupledEMConfig(em_steps=3, m_steps=5, trace_length=8)
    return ce.init(g0, g0, ce.Knobs.make(**knobs), cfg), data, cfg


def _assert_kept_finite(state):
    g0, g1 = ce.mixtures(state)
    for g in (g0, g1):
        for x in g:
            assert np.all(np.isfinite(np.asarray(x)))


BROKEN = {
    "one point": lambda x: x[:1],
    "all points equal": lambda x: np.repeat(x[:1], 200, axis=0),
    "NaN rows": lambda x: np.where(np.arange(len(x))[:, None] % 7 == 0, np.nan, x),
    "inf rows": lambda x: np.where(np.arange(len(x))[:, None] % 5 == 0, np.inf, x),
    "all NaN": lambda x: np.full_like(x, np.nan),
    "K > distinct points": lambda x: np.repeat(x[:2], 50, axis=0),
    "huge coordinates": lambda x: x * 1e30,
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_clouds_never_raise(case):
    x0, x1 = synthetic.demo_pair(300, 0)
    state, data, cfg = _state_for(BROKEN[case](x0), x1)
    out = run(state, data, cfg)
    _assert_kept_finite(out)
    msgs = ce.describe_status(int(out.status))
    if case in ("NaN rows", "inf rows"):
        assert ce.NONFINITE_POINTS & int(out.status), msgs
    if case == "all NaN":
        assert ce.EMPTY_DATA & int(out.status), msgs
        # nothing moved: the last good mixtures are the initial ones
        np.testing.assert_array_equal(ce.mixtures(out)[0].means, ce.mixtures(state)[0].means)
    assert int(out.iteration) == 3


@pytest.mark.parametrize(
    "knobs",
    [
        dict(epsilon=1e-6),
        dict(epsilon=1e-6, tau=0.5),
        dict(tau=1e-6 / (1e-6 + 1e-2)),
        dict(tau=1e6 / (1e6 + 1e-2)),
        dict(epsilon=0.0),
        dict(tau=1.5),
        dict(epsilon=np.nan),
        dict(learning_rate=1e6),
    ],
    ids=[
        "eps1e-6",
        "eps1e-6-unbalanced",
        "rho->0",
        "rho->1e6",
        "eps0",
        "tau>1",
        "eps-nan",
        "lr-huge",
    ],
)
def test_extreme_knobs_are_flagged_not_raised(knobs):
    x0, x1 = synthetic.demo_pair(300, 0)
    state, data, cfg = _state_for(x0, x1, **knobs)
    out = run(state, data, cfg)
    _assert_kept_finite(out)
    if ("epsilon" in knobs and not knobs["epsilon"] > 0) or knobs.get("tau", 1.0) > 1:
        assert ce.BAD_KNOBS & int(out.status)
        np.testing.assert_array_equal(ce.mixtures(out)[0].means, ce.mixtures(state)[0].means)


def test_divergence_rolls_back_to_last_good():
    x0, x1 = synthetic.demo_pair(300, 0)
    state, data, cfg = _state_for(x0, x1)
    good = run(state, data, cfg)
    # poison the parameters as a diverging step would, then step again
    bad = good._replace(raw0=good.raw0._replace(loc=good.raw0.loc.at[0, 0].set(jnp.inf)))
    nxt = run(bad, data, cfg._replace(em_steps=1))
    assert ce.ROLLED_BACK & int(nxt.status)
    assert int(nxt.first_bad) == int(good.iteration)


def _ott_reg_ot_cost(g0, g1, eps, max_iterations, threshold, dtype=jnp.float32):
    """OTT's Sinkhorn on the Bures costs of two mixtures, in ``dtype`` (float64 for a
    reference that no CPU's float32 rounding can stop short of its threshold)."""
    from ott.geometry import geometry
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn as ott_sinkhorn

    from gmmot_core.gaussians import bures_cost_matrix

    with jax.enable_x64(dtype == jnp.float64):
        g0, g1 = (GMM(*(jnp.asarray(np.asarray(x), dtype) for x in g)) for g in (g0, g1))
        cost = bures_cost_matrix(g0.means, g0.covs, g1.means, g1.covs)
        geom = geometry.Geometry(cost, epsilon=eps)
        prob = linear_problem.LinearProblem(geom, g0.weights, g1.weights)
        out = ott_sinkhorn.Sinkhorn(max_iterations=max_iterations, threshold=threshold)(prob)
        return float(out.reg_ot_cost), bool(out.converged)


@pytest.mark.parametrize("separation", [1.75, 5.5], ids=["cost30eps", "cost300eps"])
def test_default_mode_converges_on_ill_conditioned_balanced_pairs(separation):
    """The default (app) mode, balanced, eps 0.1, off-diagonal costs 30x / 300x eps: every
    EM iteration's OT solve converges at the app's threshold 1e-3 (no cap status), and its
    reg_ot_cost equals OTT's Sinkhorn run to convergence (1e5 sweeps, threshold 1e-5, in
    float64: in float32 OTT itself stops short of 1e-5 on some CPUs' code paths) on the
    same mixtures.

    Tolerance 2e-5 absolute: reg_ot_cost is a dual value, so its error is second order in
    the marginal error (measured: <= 3e-6), plus float32 rounding of potentials up to ~30.
    On the 300x pair OTT's own 2000-sweep cap stops unconverged, 0.1 or more away (0.27
    measured: what the app showed before).
    Balanced path factors are 1 to the marginal error over the smallest weight."""
    eps, threshold = 0.1, 1e-3
    x0, x1, g0, g1 = separated_pair(separation)
    data = ce.PairData.make(x0, x1)
    cfg = ce.CoupledEMConfig(em_steps=1, m_steps=20, trace_length=16)
    knobs = ce.Knobs.make(eps, 1.0, 0.1, 1e-2, threshold)
    state = ce.init(g0, g1, knobs, cfg)
    report = jax.jit(ce.coupling_report, static_argnames="config")
    capped_gaps = []
    for i in range(10):
        state = run(state, data, cfg)
        assert not int(state.status) & ce.SINKHORN_NOT_CONVERGED, (i, int(state.status))
        rep = report(state, cfg)
        assert bool(rep.converged), i
        m0, m1 = ce.mixtures(state)
        ref, ref_converged = _ott_reg_ot_cost(m0, m1, eps, 100_000, 1e-5, jnp.float64)
        assert ref_converged
        np.testing.assert_allclose(float(rep.reg_ot_cost), ref, atol=2e-5, err_msg=str(i))
        capped, _ = _ott_reg_ot_cost(m0, m1, eps, 2000, threshold)
        capped_gaps.append(abs(capped - ref))
        bound = 2 * threshold / float(np.min(m1.weights))
        np.testing.assert_allclose(rep.path_factor, 1.0, atol=bound, err_msg=str(i))
    assert np.all(np.asarray(state.traces.sinkhorn_iters[:10]) < 100)  # Newton steps, not caps
    if separation > 5:
        assert max(capped_gaps) > 0.1, capped_gaps
