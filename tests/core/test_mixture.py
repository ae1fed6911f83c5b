"""Mixture densities and EM vs OTT-JAX ``fit_gmm`` and POT ``ot.gmm``.

EM from the same initial mixture is the same arithmetic as OTT (float32): we allow
2e-5 absolute on means and 5e-5 on covariances (entries ~1) after 20 iterations.
"""

import jax
import jax.numpy as jnp
import numpy as np
import ot
from ott.tools.gaussian_mixture import fit_gmm, gaussian_mixture

from gmmot_core import GMM, fit_em, kmeans_pp, log_prob, log_responsibilities, sample
from gmmot_core.mixture import expected_log_likelihood, suff_stats
from gmmot_core.parametrization import floor_covariances, from_raw, to_raw


def _gmm(d) -> GMM:
    return GMM(*(jnp.asarray(d[k], jnp.float32) for k in ("weights", "means", "covs")))


def _ott_gmm(g: GMM):
    return gaussian_mixture.GaussianMixture.from_mean_cov_component_weights(
        g.means, g.covs, g.weights
    )


def _pooled(reference):
    x0 = np.load(reference / "coupled_em" / "samples0.npy")
    x1 = np.load(reference / "coupled_em" / "samples1.npy")
    return jnp.asarray(np.concatenate([x0, x1]))


def test_em_reproduces_pooled_reference(reference, load_json):
    ref = load_json("coupled_em/pooled_gmm.json")
    init = _gmm(ref["kmeanspp_init"])
    fit = jax.jit(fit_em, static_argnames="steps")(init, _pooled(reference), None, steps=20)
    np.testing.assert_allclose(fit.means, ref["means"], atol=2e-5)
    np.testing.assert_allclose(fit.covs, ref["covs"], atol=5e-5)
    np.testing.assert_allclose(fit.weights, ref["weights"], atol=1e-6)
    raw = to_raw(fit)
    np.testing.assert_allclose(raw.scale_params, ref["raw_params"]["scale_params"], atol=5e-5)
    np.testing.assert_allclose(raw.weight_params, ref["raw_params"]["weight_params"], atol=1e-5)


def test_em_vs_live_ott_with_point_weights(reference, rng):
    pts = _pooled(reference)[::4]
    w = jnp.asarray(rng.uniform(0.1, 2.0, pts.shape[0]), jnp.float32)
    init = kmeans_pp(jax.random.key(3), pts, 5, w)
    ours = fit_em(init, pts, w, steps=10)
    theirs = fit_gmm.fit_model_em(_ott_gmm(init), pts, w, steps=10)
    np.testing.assert_allclose(ours.means, theirs.loc, atol=2e-5)
    np.testing.assert_allclose(ours.covs, theirs.covariance, atol=5e-5)
    np.testing.assert_allclose(ours.weights, theirs.component_weights, atol=1e-6)


def test_log_density_and_posteriors_vs_pot(x64, rng):
    g = GMM(
        jnp.asarray([0.2, 0.5, 0.3]),
        jnp.asarray(rng.normal(size=(3, 2)) * 2),
        jnp.asarray(
            [[[1.0, 0.3], [0.3, 0.5]], [[0.2, 0.0], [0.0, 2.0]], [[1.5, -0.7], [-0.7, 1.0]]]
        ),
    )
    x = rng.normal(size=(200, 2)) * 3
    np.testing.assert_allclose(
        np.exp(log_prob(g, x)),
        ot.gmm.gmm_pdf(x, *map(np.asarray, (g.means, g.covs, g.weights))),
        rtol=1e-10,
    )
    w, m, c = (np.asarray(v) for v in g)
    comp = np.stack([w[k] * ot.gmm.gaussian_pdf(x, m[k], c[k]) for k in range(3)], 1)
    np.testing.assert_allclose(
        np.exp(log_responsibilities(g, x)), comp / comp.sum(1, keepdims=True), rtol=1e-9
    )
    # far-away points: the posteriors stay finite (log-space; POT #689)
    far = np.array([[1e3, -1e3]])
    assert np.all(np.isfinite(np.asarray(log_responsibilities(g, far))))


def test_q_from_statistics_equals_ott_get_q(reference):
    pts = _pooled(reference)
    g = kmeans_pp(jax.random.key(0), pts, 3)
    resp = jnp.exp(log_responsibilities(g, pts))
    w = jnp.ones(pts.shape[0])
    target = fit_em(g, pts, steps=2)  # a different mixture to evaluate Q at
    ours = expected_log_likelihood(target, suff_stats(pts, w, resp))
    theirs = fit_gmm.get_q(_ott_gmm(target), resp, pts, w)
    np.testing.assert_allclose(ours, theirs, rtol=2e-6)


def test_sampling_moments():
    g = GMM(
        jnp.asarray([0.3, 0.7]),
        jnp.asarray([[-3.0, 0.0], [2.0, 1.0]]),
        jnp.asarray([[[1.0, 0.5], [0.5, 1.0]], [[0.3, 0.0], [0.0, 0.2]]]),
    )
    x = np.asarray(sample(g, jax.random.key(0), 200_000))
    mean = np.asarray(g.weights @ g.means)
    # Monte-Carlo error ~ sd / sqrt(n) ~ 6e-3: allow 2e-2
    np.testing.assert_allclose(x.mean(0), mean, atol=2e-2)
    np.testing.assert_allclose((x[:, 0] < -0.5).mean(), 0.3, atol=5e-3)


def test_kmeans_pp_finds_separated_clusters():
    g = GMM(
        jnp.full(3, 1 / 3),
        jnp.asarray([[-10.0, 0.0], [0.0, 10.0], [10.0, 0.0]]),
        jnp.tile(jnp.eye(2) * 0.1, (3, 1, 1)),
    )
    x = sample(g, jax.random.key(1), 3000)
    init = kmeans_pp(jax.random.key(2), x, 3)
    found = np.sort(np.asarray(init.means), axis=0)
    np.testing.assert_allclose(found, np.sort(np.asarray(g.means), axis=0), atol=0.1)


def test_raw_roundtrip(rng):
    g = GMM(
        jnp.asarray([0.1, 0.6, 0.3]),
        jnp.asarray(rng.normal(size=(3, 2))),
        jnp.asarray(
            [[[1.0, 0.3], [0.3, 0.5]], [[0.2, 0.0], [0.0, 2.0]], [[1.5, -0.7], [-0.7, 1.0]]]
        ),
    )
    back = from_raw(to_raw(g))
    for x, y in zip(back, g, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    o = _ott_gmm(g)
    np.testing.assert_allclose(to_raw(g).scale_params, o.scale_params, atol=1e-6)
    np.testing.assert_allclose(to_raw(g).weight_params, o.component_weight_ob.params, atol=1e-6)


def test_floor_covariances_is_the_eigenvalue_projection(x64):
    """floor_covariances against numpy's eigendecomposition: eigenvalues raised to the
    floor, eigenvectors kept (to 1e-12 in float64: closed-form 2x2 against LAPACK),
    covariances above the floor left bit for bit (so an unfloored fit follows OTT's
    path exactly), means and weights untouched."""
    floor = 0.01
    covs = np.array(
        [
            [[1.0, 0.3], [0.3, 0.5]],  # above the floor
            [[0.5, 0.495], [0.495, 0.5]],  # eigenvalues 0.995 and 0.005
            [[0.2, 0.02], [0.02, 0.004]],  # one eigenvalue under the floor (tilted)
            [[0.001, 0.0], [0.0, 0.001]],  # round, under the floor
            [[0.003, 0.001], [0.001, 0.002]],  # both under the floor
            [[0.004, 0.0], [0.0, 0.3]],  # axis-aligned, one under
        ]
    )
    k = len(covs)
    g = GMM(jnp.full((k,), 1.0 / k), jnp.arange(2.0 * k).reshape(k, 2), jnp.asarray(covs))
    raw = to_raw(g)
    floored = floor_covariances(raw, floor)
    lam, vec = np.linalg.eigh(covs)
    want = np.einsum("kij,kj,klj->kil", vec, np.maximum(lam, floor), vec)
    np.testing.assert_allclose(from_raw(floored).covs, want, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(np.asarray(from_raw(floored).covs)) >= floor * (1 - 1e-12))
    np.testing.assert_array_equal(floored.scale_params[0], raw.scale_params[0])
    np.testing.assert_array_equal(floored.loc, raw.loc)
    np.testing.assert_array_equal(floored.weight_params, raw.weight_params)
