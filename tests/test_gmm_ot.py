"""GMM-OT coupling report, mean map and interpolation vs POT ``ot.gmm`` (x64).

With POT's exact plan (``gmm_ot_plan``) our map equals ``gmm_ot_apply_map(method='bary')``
to 1e-9 relative (both closed forms in float64).
"""

import jax.numpy as jnp
import numpy as np
import ot
import pytest
from helpers import random_spd

from gmmot_core import GMM, gaussians
from gmmot_core.gmm_ot import couple, interpolate, mean_map


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
