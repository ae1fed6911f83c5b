"""Fitting a mixture by the exact semi-discrete W2^2 (gmm_w2_fit): recovery of a known
mixture from its samples, a case where the W2 optimum and EM's likelihood optimum
differ (an outlier clump), the data's standardisation and the failure paths.

Every case has N = 600 points (padded to their bucket, as the app pads them), K = 2
padded to the app's 8 components and a 48 x 48 raster, so one executable serves all, and
the run tests too (its compile is most of this file's time)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gmmot_core import gmm_w2_fit as fit
from gmmot_core import synthetic
from gmmot_core.buckets import bucket
from gmmot_core.mixture import GMM, fit_em, log_prob, sample

N, K, SHAPE = 600, 2, (48, 48)
K_PAD = 8  # the app pads every fit to its largest K (gmmot_runs.w2_fit.K_MAX)
OFFSET, SCALE = np.array([250.0, -40.0]), 7.0

TRUE = dict(
    weights=[0.65, 0.35],
    means=[[0.0, 0.0], [3.0, 1.5]],
    covs=[[[0.5, 0.2], [0.2, 0.3]], [[0.2, -0.05], [-0.05, 0.4]]],
)


def _outlier_points():
    """Two clusters and 6% of the points in a far, tight clump."""
    return synthetic.outlier_clump(N, seed=3)


def _data(points):
    """The fit's data padded to its bucket of rows, as the app's run pads it."""
    data = fit.fit_data(points)
    return fit.pad_fit_data(data, bucket(len(data.nu)))


def _config():
    """One config for every case: the app's W2 fit of the outlier clump (padded to its
    bucket, sizes from that cloud; the known cloud fits in them), so this file, the run
    tests and the asset replay share one compiled program (``SHARED_PROGRAMS``)."""
    data = fit.fit_data(_outlier_points())
    return fit.FitConfig(shape=SHAPE).with_sizes(data.points, bucket(len(data.nu)))


def _known_points():
    true = GMM(*(jnp.asarray(TRUE[k], jnp.float64) for k in ("weights", "means", "covs")))
    # far from the origin and scaled: the fit runs in unit coordinates
    return OFFSET + SCALE * np.asarray(sample(true, jax.random.PRNGKey(0), N))


def _init(gmm, data, config, lr):
    """The fit's state at ``gmm``, padded to K_PAD components as the app pads it."""
    return fit.init(fit.pad_components(gmm, K_PAD), data, config, lr)


def _mixture(state, data) -> GMM:
    """The fitted components (the last K; the others are the inert padding)."""
    return GMM(*(a[-K:] for a in fit.mixture(state, data)))


def _fit(points, config, steps=300, lr=0.02, key=0):
    data = _data(points)
    g0 = fit.initial_mixture(jax.random.PRNGKey(key), data, K)
    state, config, _ = fit.advance(_init(g0, data, config, lr), data, config, steps)
    return data, g0, state


def _objective_at(gmm, data, config):
    """The fit's objective in unit coordinates (W2^2 plus the mass outside the box) and
    the status at ``gmm``: one step at learning rate 0."""
    state, _, _ = fit.advance(_init(gmm, data, config, 0.0), data, config, 1)
    return float(state.trace.w2[0] + state.trace.outside[0]), int(state.status)


@pytest.fixture(scope="module")
def known():
    with jax.enable_x64(True):
        config = _config()
        data, _, state = _fit(_known_points(), config)
        return dict(
            data=data,
            config=config,
            state=state,
            fitted=jax.tree.map(np.asarray, _mixture(state, data)),
            weights=np.asarray(TRUE["weights"]),
            means=OFFSET + SCALE * np.asarray(TRUE["means"]),
            covs=SCALE**2 * np.asarray(TRUE["covs"]),
            scale=SCALE,
        )


@pytest.mark.slow
def test_recovers_a_known_mixture_from_its_samples(known):
    """Tolerances: with N = 600 samples a component's mean has a sampling error of
    sigma / sqrt(N w) ~ 0.03-0.05 sigma-units, its weight sqrt(w (1 - w) / N) ~ 0.02 and
    its covariance ~ sqrt(2 / (N w)) ~ 7-10% relative; the W2 estimator is noisier than
    maximum likelihood, and the 48^2 raster of the box (pixel ~ 0.1 sigma) adds a bias
    of the order of a pixel; so means within 0.15 sigma, weights within 0.04, covariances
    within 25% (Frobenius, relative)."""
    f, st = known["fitted"], known["state"]
    assert int(st.status) == 0, fit.describe_status(int(st.status))
    assert int(st.step) == 300
    order = np.argsort(f.weights)[::-1]  # the heavier component first, as TRUE
    sigma = known["scale"] * np.sqrt(0.2)  # the smallest axis variance
    np.testing.assert_allclose(f.weights[order], known["weights"], atol=0.04)
    assert np.max(np.abs(f.means[order] - known["means"])) < 0.15 * sigma
    for got, want in zip(f.covs[order], known["covs"], strict=True):
        assert np.linalg.norm(got - want) < 0.25 * np.linalg.norm(want)


@pytest.mark.slow
def test_trace_descends_and_ends_near_the_em_fit(known):
    """The W2^2 trace falls by > 20% from the kmeans++ start (Adam is not monotone step
    by step: we compare the first, the mid-run and the last values), and on data drawn
    from a mixture W2's and EM's fits are close: their means within 0.2 sigma."""
    st, data = known["state"], known["data"]
    trace = np.asarray(st.trace.w2)[:300]
    assert np.all(np.isfinite(trace))
    assert trace[-1] < 0.8 * trace[0] and trace[-1] <= trace[150] * 1.001
    with jax.enable_x64(True):
        user = np.asarray(data.centre) + np.asarray(data.scale) * (np.asarray(data.points) - 0.5)
        g0 = fit.initial_mixture(jax.random.PRNGKey(0), data, K)
        em = jax.tree.map(np.asarray, fit_em(g0, jnp.asarray(user), data.nu * N, steps=200))
    f = known["fitted"]
    sigma = known["scale"] * np.sqrt(0.2)
    oe, of = np.argsort(em.weights), np.argsort(f.weights)
    assert np.max(np.abs(em.means[oe] - f.means[of])) < 0.2 * sigma


@pytest.mark.slow
def test_an_outlier_clump_separates_the_w2_and_likelihood_optima(known):
    """Two clusters and 6% of the points in a far, tight clump, K = 2, the same start.
    EM widens a component over the clump, which puts 1.2% of its mass outside the box;
    the W2 fit keeps its mass on the data. Each wins on its own criterion by a margin:
    the W2 fit's objective (W2^2 to the mixture in the box plus the mass outside it) is
    below 0.6x EM's, EM's mean log-likelihood is above the W2 fit's by > 0.1 nats (both
    values from the same solver and log-density; measured 0.40x and 0.19 nats)."""
    config = known["config"]
    with jax.enable_x64(True):
        points = _outlier_points()
        data, g0, state = _fit(points, config)
        assert int(state.status) == 0, fit.describe_status(int(state.status))
        w2_fit = _mixture(state, data)
        em = fit_em(g0, jnp.asarray(points), steps=300)
        ours, s1 = _objective_at(w2_fit, data, config)
        theirs, s2 = _objective_at(em, data, config)
        assert s1 == s2 == 0
        assert ours < 0.6 * theirs
        ll_fit = float(jnp.mean(log_prob(w2_fit, jnp.asarray(points))))
        ll_em = float(jnp.mean(log_prob(em, jnp.asarray(points))))
        assert ll_em > ll_fit + 0.1
        assert float(state.trace.outside[299]) < 0.1 * 0.012


@pytest.mark.slow  # its own programs (25-60 s cold): CI, not the quick lane
def test_inert_components_leave_every_step_as_it_was(x64):
    """A mixture padded with components of weight 0 (one compiled fit for every K) takes
    the unpadded steps: their weight parameters are -inf, their gradients 0, and the
    raster adds exact zeros. Ten steps from the same start, padded and not, on a small
    case of its own (60 points, 16^2: two small programs, not a second copy of the file's
    large one): the same trace and mixture (measured equal; 1e-12 relative allows for a
    summation order that differs with the number of components)."""
    data = fit.fit_data(_known_points()[:60])
    config = fit.FitConfig(shape=(16, 16)).with_sizes(data.points)
    g0 = fit.initial_mixture(jax.random.PRNGKey(0), data, K)
    plain, _, _ = fit.advance(fit.init(g0, data, config, 0.02), data, config, 10)
    padded, _, _ = fit.advance(_init(g0, data, config, 0.02), data, config, 10)
    assert int(plain.status) == int(padded.status) == 0
    np.testing.assert_allclose(padded.trace.w2[:10], plain.trace.w2[:10], rtol=1e-12)
    for a, b in zip(_mixture(padded, data), fit.mixture(plain, data), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    # the padding stays inert: weight 0, weight parameters still -inf
    assert np.all(np.asarray(fit.mixture(padded, data).weights[: K_PAD - K]) == 0.0)
    assert np.all(np.asarray(padded.raw.weight_params[: K_PAD - K]) == -np.inf)


@pytest.mark.slow
def test_a_diverging_update_is_rolled_back(known):
    """An infinite learning rate makes the parameters overflow: the step is not taken, the
    mixture stays the last good one and the status says so."""
    data, config, st = known["data"], known["config"], known["state"]
    with jax.enable_x64(True):
        bad = st._replace(learning_rate=jnp.asarray(jnp.inf, jnp.float64))
        new, _, _ = fit.advance(bad, data, config, 1)
    assert int(new.status) & fit.ROLLED_BACK
    assert "last good mixture" in fit.describe_status(int(new.status))
    for a, b in zip(jax.tree.leaves(new.raw), jax.tree.leaves(st.raw), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_fit_data_standardises_merges_and_refuses(x64):
    rng = np.random.default_rng(0)
    p = rng.normal(size=(50, 2))
    a = fit.fit_data(p)
    b = fit.fit_data(1e9 * p + 1e12)  # any finite range maps onto the same unit box
    np.testing.assert_allclose(np.asarray(a.points), np.asarray(b.points), atol=1e-6)
    assert float(jnp.min(a.points)) >= 0.2 / 1.4 - 1e-12  # the margin: a fifth per edge
    # duplicates merge (weights add up), non-finite rows and zero weights are dropped
    q = np.concatenate([p, p[:5], [[np.nan, 0.0]]])
    w = np.concatenate([np.ones(50), np.ones(5), [1.0]])
    w[10] = 0.0
    c = fit.fit_data(q, w)
    assert c.points.shape == (49, 2)
    np.testing.assert_allclose(np.sort(np.asarray(c.nu))[-5:], 2 / 54)
    for bad, msg in [
        (np.zeros((3, 3)), r"\[N, 2\]"),
        (np.ones((4, 2)), "two distinct points"),
        (np.array([[0.0, 0.0], [1.0, 0.0]]), None),  # a segment is fine: a square box
    ]:
        if msg is None:
            assert fit.fit_data(bad).points.shape == (2, 2)
        else:
            with pytest.raises(ValueError, match=msg):
                fit.fit_data(bad)
    with pytest.raises(ValueError, match=">= 0"):
        fit.fit_data(p, -np.ones(50))
