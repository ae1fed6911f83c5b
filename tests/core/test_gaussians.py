"""Bures / W2 between Gaussians vs OTT ``costs.Bures`` and POT ``ot.gaussian`` / ``ot.gmm``.

Tolerances: float64 closed forms are exact up to ~1e-12 relative; against the peers
(which use iterative or eigen-based matrix square roots) we allow 1e-8 relative in
float64 (their own convergence tolerance) and 2e-5 relative in float32.
"""

import jax
import jax.numpy as jnp
import numpy as np
import ot
import pytest
from helpers import random_spd
from ott.geometry import costs

from gmmot_core import gaussians as G


def _ott_bures_matrix(m0, c0, m1, c1):
    cost = costs.Bures(dimension=2)
    x = jnp.concatenate([m0, c0.reshape(-1, 4)], -1)
    y = jnp.concatenate([m1, c1.reshape(-1, 4)], -1)
    return jax.vmap(lambda u: jax.vmap(lambda v: cost(u, v))(y))(x)


@pytest.mark.parametrize("cond", [1.0, 10.0, 1e3, 1e6])
def test_cost_matrix_vs_pot_x64(x64, rng, cond):
    m0, m1 = rng.normal(size=(4, 2)) * 3, rng.normal(size=(5, 2)) * 3
    c0, c1 = random_spd(rng, 4, cond), random_spd(rng, 5, cond)
    ours = np.asarray(G.bures_cost_matrix(*map(jnp.asarray, (m0, c0, m1, c1))))
    pot = ot.gmm.dist_bures_squared(m0, m1, c0, c1)
    np.testing.assert_allclose(ours, pot, rtol=1e-8, atol=1e-10)
    for i in range(4):
        for j in range(5):
            w = ot.gaussian.bures_wasserstein_distance(m0[i], m1[j], c0[i], c1[j]) ** 2
            np.testing.assert_allclose(ours[i, j], w, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("cond", [1.0, 10.0, 100.0, 1e4, 1e6])
def test_cost_matrix_vs_ott_float32(rng, cond):
    m0, m1 = rng.normal(size=(3, 2)) * 2, rng.normal(size=(4, 2)) * 2
    c0, c1 = random_spd(rng, 3, cond), random_spd(rng, 4, cond)
    args = [jnp.asarray(x, jnp.float32) for x in (m0, c0, m1, c1)]
    ours = np.asarray(G.bures_cost_matrix(*args))
    theirs = np.asarray(_ott_bures_matrix(*args))
    exact = ot.gmm.dist_bures_squared(m0, m1, c0, c1)  # float64 truth
    assert ours.dtype == np.float32
    # float32 round-off of costs of size ~50: 2e-5 absolute
    np.testing.assert_allclose(ours, exact, atol=2e-5)
    if cond <= 10:
        np.testing.assert_allclose(ours, theirs, rtol=2e-5, atol=2e-5)
    else:
        # OTT's float32 Newton-Schulz sqrtm loses up to 2e-2 here; we must not
        assert np.abs(ours - exact).max() <= np.abs(theirs - exact).max()


def test_closed_forms(x64, rng):
    c = random_spd(rng, 3, 7.0)
    m = rng.normal(size=(3, 2))
    # identical Gaussians: exactly 0 (clipped round-off), POT#695 reports 1e-5 here
    assert np.all(np.asarray(G.w2_squared(m, c, m, c)) < 1e-12)
    # translation adds |v|^2
    v = np.array([0.3, -1.7])
    base = G.w2_squared(m, c, m, c * 2.0)
    shifted = G.w2_squared(m, c, m + v, c * 2.0)
    np.testing.assert_allclose(shifted - base, np.sum(v**2), rtol=1e-12)
    # commuting covariances: Bures^2 = sum (sqrt(l0) - sqrt(l1))^2
    l0, l1 = np.array([2.0, 0.3]), np.array([0.5, 4.0])
    q = np.array([[np.cos(0.4), -np.sin(0.4)], [np.sin(0.4), np.cos(0.4)]])
    s0, s1 = q @ np.diag(l0) @ q.T, q @ np.diag(l1) @ q.T
    np.testing.assert_allclose(
        G.bures_squared(s0, s1), np.sum((np.sqrt(l0) - np.sqrt(l1)) ** 2), rtol=1e-12
    )


def test_sqrtm_near_singular_float32(rng):
    # eigenvalues down to 1e-6 x the largest, plus an exactly singular one
    c = random_spd(rng, 50, 1e6).astype(np.float32)
    c = np.concatenate([c, np.array([[[1.0, 1.0], [1.0, 1.0]]], np.float32)])
    r = np.asarray(G.sqrtm2(jnp.asarray(c)))
    assert np.all(np.isfinite(r))
    rel = np.abs(r @ r - c).max(axis=(1, 2)) / np.abs(c).max(axis=(1, 2))
    assert rel.max() < 1e-5
    grads = jax.grad(lambda x: jnp.sum(G.bures_squared(x, x[::-1])))(jnp.asarray(c))
    assert np.all(np.isfinite(np.asarray(grads)))


def test_ot_map_and_geodesic_vs_pot(x64, rng):
    m0, m1 = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    c0, c1 = random_spd(rng, 6, 50.0), random_spd(rng, 6, 5.0)
    t = np.asarray(G.ot_map(c0, c1))
    for i in range(6):
        a, _ = ot.gaussian.bures_wasserstein_mapping(m0[i], m1[i], c0[i], c1[i])
        np.testing.assert_allclose(t[i], a, rtol=1e-8, atol=1e-10)
    # push-forward: T c0 T = c1; endpoints and midpoint of the geodesic
    np.testing.assert_allclose(np.einsum("nij,njk,nkl->nil", t, c0, t), c1, rtol=1e-9, atol=1e-12)
    for tt in (0.0, 1.0):
        mt, ct = G.geodesic(m0, c0, m1, c1, tt)
        np.testing.assert_allclose(mt, m1 if tt else m0, atol=1e-12)
        np.testing.assert_allclose(ct, c1 if tt else c0, atol=1e-12)
    # W2(mu_0, mu_t) = t W2(mu_0, mu_1) along a geodesic
    mt, ct = G.geodesic(m0, c0, m1, c1, 0.3)
    np.testing.assert_allclose(
        np.sqrt(G.w2_squared(m0, c0, mt, ct)),
        0.3 * np.sqrt(G.w2_squared(m0, c0, m1, c1)),
        rtol=1e-9,
    )


def test_bures_barycenter_vs_pot(x64, rng):
    covs = random_spd(rng, 4, 20.0)
    w = np.array([0.1, 0.2, 0.3, 0.4])
    ours, n_iter = G.bures_barycenter(
        jnp.asarray(covs), jnp.asarray(w), tolerance=1e-20, max_iterations=200
    )
    _, pot = ot.gaussian.bures_wasserstein_barycenter(
        np.zeros((4, 2)), covs, w, num_iter=1000, eps=1e-14
    )
    np.testing.assert_allclose(ours, pot, rtol=1e-8)
    assert 1 <= int(n_iter) <= 200
    # the fixed point: sum_m w_m (S^1/2 S_m S^1/2)^1/2 = S
    root = G.sqrtm2(ours)
    fix = np.sum(w[:, None, None] * np.asarray(G.sqrtm2(root[None] @ covs @ root[None])), 0)
    np.testing.assert_allclose(fix, ours, rtol=1e-9)
    # one input with weight 1 is its own barycenter
    one, _ = G.bures_barycenter(
        jnp.asarray(covs), jnp.asarray([0.0, 1.0, 0.0, 0.0]), tolerance=1e-24, max_iterations=200
    )
    np.testing.assert_allclose(one, covs[1], rtol=1e-8)
