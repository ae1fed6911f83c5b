"""GMM-OT coupling report, mean map and interpolation vs POT ``ot.gmm`` (x64).

With POT's exact plan (``gmm_ot_plan``) our map equals ``gmm_ot_apply_map(method='bary')``
to 1e-9 relative (both closed forms in float64).
"""

import jax
import jax.numpy as jnp
import numpy as np
import ot
import pytest
from helpers import random_spd

from gmmot_core import GMM, gaussians, kmeans_pp, log_prob
from gmmot_core.gmm_ot import couple, exact_mw2, interpolate, mean_map
from gmmot_core.semidiscrete import image_density, solve_weights


def _pair(rng, k0=3, k1=4):
    g0 = GMM(
        jnp.asarray(rng.dirichlet(np.ones(k0))),
        jnp.asarray(rng.normal(size=(k0, 2)) * 3),
        jnp.asarray(random_spd(rng, k0, 8.0)),
    )
    g1 = GMM(
        jnp.asarray(rng.dirichlet(np.ones(k1))),
        jnp.asarray(rng.normal(size=(k1, 2)) * 3 + 1),
        jnp.asarray(random_spd(rng, k1, 8.0)),
    )
    return g0, g1


def _np(g):
    return [np.asarray(x) for x in g]


def test_mean_map_matches_pot_with_exact_plan(x64, rng):
    g0, g1 = _pair(rng)
    (w0, m0, c0), (w1, m1, c1) = _np(g0), _np(g1)
    plan = ot.gmm.gmm_ot_plan(m0, m1, c0, c1, w0, w1)
    x = rng.normal(size=(300, 2)) * 3
    theirs = ot.gmm.gmm_ot_apply_map(x, m0, m1, c0, c1, w0, w1, plan=plan, method="bary")
    ours = mean_map(jnp.asarray(x), g0, g1, jnp.asarray(plan), jnp.asarray(w0))
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-10)
    # default source weights = the plan's row sums = w0 for an exact plan
    np.testing.assert_allclose(
        mean_map(jnp.asarray(x), g0, g1, jnp.asarray(plan)), theirs, rtol=1e-8, atol=1e-9
    )


def test_far_points_do_not_overflow(rng):
    g0, g1 = _pair(rng)
    plan = couple(g0, g1, 0.1).coupling
    far = jnp.asarray([[200.0, -300.0], [1e3, 1e3]], jnp.float32)
    assert np.all(np.isfinite(np.asarray(mean_map(far, g0, g1, plan))))


def test_small_epsilon_coupling_approaches_exact_plan(x64, rng):
    g0, g1 = _pair(rng)
    (w0, m0, c0), (w1, m1, c1) = _np(g0), _np(g1)
    exact = ot.gmm.gmm_ot_plan(m0, m1, c0, c1, w0, w1)
    loss = ot.gmm.gmm_ot_loss(m0, m1, c0, c1, w0, w1)
    rep = couple(g0, g1, 1e-3, 1.0, threshold=1e-10, max_iterations=20000)
    # entropic bias is O(eps log K) on the cost and the plan is unique here
    np.testing.assert_allclose(rep.coupling, exact, atol=2e-3)
    np.testing.assert_allclose(rep.transport, loss, rtol=2e-3)
    np.testing.assert_allclose(rep.cost, ot.gmm.dist_bures_squared(m0, m1, c0, c1), rtol=1e-10)


def test_report_balanced_and_unbalanced_invariants(x64, rng):
    g0, g1 = _pair(rng)
    bal = couple(g0, g1, 0.05, 1.0, threshold=1e-9, max_iterations=20000)
    np.testing.assert_allclose(bal.total_mass, 1.0, atol=1e-7)
    np.testing.assert_allclose(bal.row, g0.weights, atol=1e-7)
    big = np.asarray(bal.coupling) > 1e-8
    np.testing.assert_allclose(np.asarray(bal.path_factor)[big], 1.0, atol=1e-5)
    assert np.isinf(bal.rho) and float(bal.uw2) == pytest.approx(float(bal.transport))

    eps, rho = 0.05, 0.2
    tau = rho / (rho + eps)
    unb = couple(g0, g1, eps, tau, threshold=1e-10, max_iterations=20000)
    assert float(unb.total_mass) < 1.0
    np.testing.assert_allclose(unb.rho, rho, rtol=1e-12)
    np.testing.assert_allclose(unb.normalized.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(unb.outflow, np.asarray(unb.row) / np.asarray(g0.weights))
    np.testing.assert_allclose(
        unb.path_factor, np.asarray(unb.outflow)[:, None] / np.asarray(unb.inflow)[None]
    )
    kl = lambda p, q: np.sum(p * np.log(p / q) - p + q)  # noqa: E731
    np.testing.assert_allclose(unb.kl_a, kl(np.asarray(unb.row), np.asarray(g0.weights)))
    np.testing.assert_allclose(unb.uw2, unb.transport + rho * (unb.kl_a + unb.kl_b))
    # a component that grows from weight a_k to b_l along a matched path gets factor ~ b_l/a_k
    one = GMM(
        jnp.asarray([0.2, 0.8]),
        jnp.asarray([[0.0, 0.0], [10.0, 0.0]]),
        jnp.tile(jnp.eye(2), (2, 1, 1)),
    )
    two = one._replace(weights=jnp.asarray([0.42, 0.58]))
    r = couple(one, two, 0.01, 0.5 / 0.51, threshold=1e-10, max_iterations=20000)
    np.testing.assert_allclose(r.path_factor[0, 0], 0.42 / 0.2, rtol=2e-2)


def test_interpolation_geodesics(x64, rng):
    g0, g1 = _pair(rng)
    (w0, m0, c0), (w1, m1, c1) = _np(g0), _np(g1)
    plan = ot.gmm.gmm_ot_plan(m0, m1, c0, c1, w0, w1)
    for t in (0.0, 0.35, 1.0):
        mu = interpolate(g0, g1, jnp.asarray(plan), t)
        w = np.asarray(mu.weights).reshape(3, 4)
        np.testing.assert_allclose(w, np.where(plan >= 1e-6, plan, 0) / plan[plan >= 1e-6].sum())
        means = np.asarray(mu.means).reshape(3, 4, 2)
        covs = np.asarray(mu.covs).reshape(3, 4, 2, 2)
        for k in range(3):
            for j in range(4):
                a, _ = ot.gaussian.bures_wasserstein_mapping(m0[k], m1[j], c0[k], c1[j])
                lin = (1 - t) * np.eye(2) + t * a
                np.testing.assert_allclose(covs[k, j], lin @ c0[k] @ lin, rtol=1e-8, atol=1e-12)
                np.testing.assert_allclose(means[k, j], (1 - t) * m0[k] + t * m1[j])
    # the mixture mean moves linearly: E[mu_t] = (1 - t) E[mu_0] + t E[mu_1]
    mid = interpolate(g0, g1, jnp.asarray(plan), 0.5)
    np.testing.assert_allclose(
        np.asarray(mid.weights) @ np.asarray(mid.means), 0.5 * (w0 @ m0 + w1 @ m1), rtol=1e-6
    )
    # MW2 along the path: W2^2 between components at t scales like t^2
    cost_t = gaussians.bures_cost_matrix(
        m0,
        c0,
        np.asarray(mid.means).reshape(3, 4, 2)[:, 0],
        np.asarray(mid.covs).reshape(3, 4, 2, 2)[:, 0],
    )
    np.testing.assert_allclose(
        np.diag(np.asarray(cost_t)),
        0.25 * np.asarray(gaussians.w2_squared(m0, c0, m1[0], c1[0])),
        rtol=1e-8,
    )


def test_exact_mw2_matches_pot(x64, rng):
    """The unregularised LP over component couplings against POT's ``gmm_ot_loss``
    (its own exact EMD on the same Bures costs): 1e-6 relative, as asked (both are
    exact LPs; HiGHS' tolerances are 1e-9)."""
    for k0, k1 in ((3, 4), (6, 5), (10, 10)):
        g0, g1 = _pair(rng, k0, k1)
        (w0, m0, c0), (w1, m1, c1) = _np(g0), _np(g1)
        plan, mw2 = exact_mw2(g0, g1)
        assert mw2 == pytest.approx(ot.gmm.gmm_ot_loss(m0, m1, c0, c1, w0, w1), rel=1e-6)
        np.testing.assert_allclose(plan.sum(1), w0, atol=1e-9)
        np.testing.assert_allclose(plan.sum(0), w1, atol=1e-9)


def _far_pair():
    """Three components per side, far apart (off-diagonal costs ~30-120): at eps = 0.01
    OTT's Sinkhorn stops at its 2000-sweep cap, far from converged."""
    means0 = jnp.asarray([[0.0, 0.0], [6.0, 0.0], [0.0, 8.0]])
    means1 = means0 + jnp.asarray([0.5, -0.3])
    covs = jnp.broadcast_to(jnp.eye(2) * 0.5, (3, 2, 2))
    g0 = GMM(jnp.asarray([0.5, 0.3, 0.2]), means0, covs)
    g1 = GMM(jnp.asarray([0.2, 0.3, 0.5]), means1, covs * 1.5)
    return g0, g1


def test_balanced_couple_is_converged_by_default_where_sinkhorn_is_capped(x64):
    g0, g1 = _far_pair()
    (w0, m0, c0), (w1, m1, c1) = _np(g0), _np(g1)
    exact = ot.gmm.gmm_ot_loss(m0, m1, c0, c1, w0, w1)
    capped = couple(g0, g1, 0.01, 1.0, solver="sinkhorn")
    assert not bool(capped.converged)  # the trap: a capped, unconverged value
    rep = couple(g0, g1, 0.01)  # default: Newton for a balanced coupling
    assert bool(rep.converged)
    np.testing.assert_allclose(rep.row, w0, atol=1e-12)  # rows exact by construction
    np.testing.assert_allclose(rep.col, w1, atol=2e-3)  # threshold 1e-3 (L1)
    # entropic bias at eps = 0.01 on costs ~30: eps * (entropy of the plan) < 0.02
    assert float(rep.mw2) == pytest.approx(exact, abs=0.02)
    assert abs(float(capped.mw2) - exact) > 10 * abs(float(rep.mw2) - exact)
    # balanced: every path factor is 1 up to the column error
    np.testing.assert_allclose(rep.path_factor[rep.coupling > 1e-6], 1.0, atol=5e-2)
    with pytest.raises(ValueError, match="balanced"):
        couple(g0, g1, 0.01, 0.9, solver="newton")


def test_report_carries_the_total_mass_penalty(x64, rng):
    g0, g1 = _pair(rng)
    rep = couple(g0, g1, 10.0, 0.5)  # large eps, unbalanced: F far from 1
    f = float(rep.total_mass)
    assert float(rep.mass_penalty) == pytest.approx(f * np.log(f) - f + 1.0, rel=1e-12)


def test_inputs_that_are_not_2d_are_refused():
    """N(0, 2 I3) vs N(0, I3) gave a Bures term of 0 (true 0.515): now refused."""
    with pytest.raises(ValueError, match="2D"):
        gaussians.bures_squared(2 * jnp.eye(3), jnp.eye(3))
    with pytest.raises(ValueError, match="2D"):
        gaussians.w2_squared(jnp.zeros(3), jnp.eye(2), jnp.zeros(3), jnp.eye(2))
    g3 = GMM(jnp.ones(2) / 2, jnp.zeros((2, 3)), jnp.broadcast_to(jnp.eye(3), (2, 3, 3)))
    with pytest.raises(ValueError, match="2D"):
        couple(g3, g3)
    with pytest.raises(ValueError, match="2D"):
        log_prob(g3, jnp.zeros((5, 3)))
    with pytest.raises(ValueError, match="2D"):
        kmeans_pp(jax.random.key(0), jnp.zeros((10, 3)), 2)
    with pytest.raises(ValueError, match="2D"):
        solve_weights(jnp.zeros((4, 3)), jnp.ones(4) / 4, image_density(np.ones((4, 4))))
