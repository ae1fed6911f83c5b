"""Synthetic generators against their peers.

``random_mixtures`` must be OTT's barycenter-notebook recipe draw for draw: same keys,
same means and weights (bit-equal: the same float32 ops), covariances to 2e-6 relative
(OTT rebuilds them through a Cholesky factor and back; we form ``Q diag Q^T`` directly).
"""

import json

import jax
import numpy as np
import pytest
from ott.tools.gaussian_mixture.gaussian_mixture import GaussianMixture

from gmmot_core import synthetic


def test_random_mixtures_is_the_notebooks_setup(reference):
    """The default call reproduces the notebook's inputs stored from OTT 0.6.0."""
    ref = json.loads((reference / "barycenter/barycenter.json").read_text())
    mixtures, lambdas = synthetic.random_mixtures()
    np.testing.assert_allclose(lambdas, ref["barycentric_weights"], rtol=1e-6)
    assert len(mixtures) == len(ref["input_gmms"]) == 3
    for ours, theirs in zip(mixtures, ref["input_gmms"], strict=True):
        np.testing.assert_array_equal(ours.weights, np.float32(theirs["weights"]))
        np.testing.assert_array_equal(ours.means, np.float32(theirs["means"]))
        np.testing.assert_allclose(ours.covs, theirs["covs"], rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("seed", "k", "spread", "scale", "center"),
    [(0, 1, 0.1, 0.1, (0.0, 0.0)), (7, 4, 2.5, 3.0, (10.0, -4.0)), (99, 6, -1.75, 5.0, (-3, 8))],
)
def test_random_mixture_draws_as_ott(seed, k, spread, scale, center):
    """Against OTT's ``GaussianMixture.from_random`` live, on keys and settings the
    notebook never used (one component: no weight draw; a negative spread as ms[0])."""
    key = jax.random.PRNGKey(seed)
    ridge = np.float32(center)
    theirs = GaussianMixture.from_random(
        key, n_components=k, n_dimensions=2, stdev_mean=spread, stdev_cov=scale, ridge=ridge
    )
    ours = synthetic.random_mixture(key, k, spread, scale, np.float32(center))
    np.testing.assert_allclose(ours.weights, theirs.component_weights, rtol=1e-6)
    np.testing.assert_allclose(ours.means, theirs.loc, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours.covs, theirs.covariance, rtol=2e-6, atol=1e-6 * scale)


def test_random_mixtures_lambdas_and_seeds_as_the_notebook():
    """Barycentric weights Dirichlet(alpha) from the first split key; alpha is honoured."""
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    theirs = jax.random.dirichlet(keys[0], np.full(3, 0.5))
    _, lambdas = synthetic.random_mixtures(3, alpha=0.5)
    np.testing.assert_allclose(lambdas, theirs, rtol=1e-6)
    with pytest.raises(ValueError, match="one entry per mixture"):
        synthetic.random_mixtures(0, (2, 3), ((0, 0),), (1.0, 1.0))
