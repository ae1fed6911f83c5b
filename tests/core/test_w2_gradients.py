"""True gradients of the semi-discrete W2^2 in every argument, against central finite
differences of tight float64 solves, and no silent wrong value when a solve fails."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gmmot_core.semidiscrete import (
    density_from_values,
    describe,
    gmm_values,
    image_density,
    solve_weights,
    w2,
    w2_and_status,
)
from gmmot_core.semidiscrete.status import EMPTY_CELL, STOP_BITS
from gmmot_core.targets import gmm_image

TIGHT = 1e-13  # finite differences from solves this tight: W2^2 is then good to ~1e-13


@pytest.fixture
def case(x64):
    """40 Diracs (non-uniform masses) and a random 12 x 10 image on [0, 1]^2."""
    rng = np.random.default_rng(7)
    y = jnp.asarray(rng.uniform(0.05, 0.95, (40, 2)))
    nu = rng.uniform(0.5, 1.5, 40)
    values = jnp.asarray(rng.uniform(0.2, 2.0, (12, 10)))
    return y, jnp.asarray(nu / nu.sum()), values


def _tight(y, nu, values):
    res = solve_weights(y, nu, image_density(np.asarray(values)), tol=TIGHT)
    assert int(res.status) == 0
    return float(jnp.sum(res.integrals.second))


def test_density_from_values_equals_image_density(case):
    _, _, values = case
    a, b = density_from_values(values), image_density(np.asarray(values))
    for x, z in zip(a, b, strict=True):  # two routes to the same prefix sums: rounding only
        np.testing.assert_allclose(np.asarray(x), np.asarray(z), rtol=1e-12, atol=1e-14)


@pytest.mark.slow
def test_gradient_in_nu_is_the_shifted_laguerre_weights(case):
    """Along zero-sum directions (nu stays a probability) the derivative of W2^2 is
    sum_i w_i d_i; the cotangent is w - mean(w), which sums to zero."""
    y, nu, values = case
    dens = density_from_values(values)
    g = jax.jit(jax.grad(w2, argnums=2))(y, dens, nu)  # one program, not eager loops
    assert abs(float(jnp.sum(g))) <= 1e-12
    rng = np.random.default_rng(1)
    h = 1e-6
    for _ in range(3):
        d = rng.normal(size=40)
        d = jnp.asarray((d - d.mean()) * 1e-2)
        fd = (_tight(y, nu + h * d, values) - _tight(y, nu - h * d, values)) / (2 * h)
        # O(h^2) truncation ~1e-12 and 1e-13 solves / 2h ~1e-7 absolute on a ~1e-2 slope;
        # the gradient from a default-tol (1e-8) solve: weights good to ~1e-7 relative
        assert float(jnp.dot(g, d)) == pytest.approx(fd, rel=1e-6)  # measured 3e-9
        assert abs(fd) > 1e-4  # the check is not of two zeros


def test_gradient_in_the_pixel_values_is_the_integrated_c_transform(case):
    """d W2^2 / d values through density_from_values (normalisation included), against
    central differences along random directions of the pixel values."""
    y, nu, values = case
    g = jax.jit(jax.grad(lambda v: w2(y, density_from_values(v), nu)))(values)
    assert float(jnp.max(jnp.abs(g))) > 0
    rng = np.random.default_rng(2)
    h = 1e-6
    for _ in range(3):
        d = jnp.asarray(rng.normal(size=values.shape))
        fd = (_tight(y, nu, values + h * d) - _tight(y, nu, values - h * d)) / (2 * h)
        # as above: O(h^2) and the solves' 1e-13 / 2h; the cotangent is exact at the
        # solved (1e-8) weights
        assert float(jnp.sum(g * d)) == pytest.approx(fd, rel=1e-6)  # measured 2e-8-7e-8
        assert abs(fd) > 1e-5


def test_gradient_in_positions_under_jit(case):
    y, nu, values = case
    dens = density_from_values(values)
    value, g = jax.jit(jax.value_and_grad(w2))(y, dens, nu)
    assert float(value) == pytest.approx(_tight(y, nu, values), rel=1e-7)
    d = jnp.asarray(np.random.default_rng(3).normal(size=y.shape))
    h = 1e-6
    fd = (_tight(y + h * d, nu, values) - _tight(y - h * d, nu, values)) / (2 * h)
    assert float(jnp.sum(g * d)) == pytest.approx(fd, rel=1e-5)


@pytest.mark.slow
def test_a_failed_solve_returns_nan_and_says_why(reference):
    """Float32 on sdot's tutorial target (down to 1e-12 of its peak): float32 prefix
    sums leave Voronoi cells empty. The value was 0.0016 (true 0.0504), silently; now
    it is NaN, the status says EMPTY_CELL and its message names the fix (float64)."""
    base = reference / "semidiscrete"
    y0 = jnp.asarray(np.load(base / "positions0.npy"), jnp.float32)
    dens = image_density(np.load(base / "target.npy"), dtype=jnp.float32)
    # value, status and gradient from one program (eager, each loop compiles on its own)
    (value, status), g = jax.jit(jax.value_and_grad(w2_and_status, has_aux=True))(y0, dens)
    assert np.isnan(float(value))
    assert int(status) & EMPTY_CELL and int(status) & STOP_BITS
    assert "float64" in describe(int(status))
    assert bool(jnp.all(jnp.isnan(g)))
    assert describe(0) == ""


GMM3 = (
    np.array([0.5, 0.3, 0.2]),
    np.array([[0.3, 0.35], [0.7, 0.6], [0.45, 0.75]]),
    np.array([[[0.02, 0.005], [0.005, 0.015]], [[0.01, 0.0], [0.0, 0.03]], [[0.015, -0.004],
              [-0.004, 0.01]]]),
)  # fmt: skip


def test_gmm_values_equal_the_host_raster(x64):
    """The jnp raster against targets.gmm_image (numpy, same quadrature): rounding only."""
    w, m, c = GMM3
    ours = gmm_values(jnp.asarray(w), jnp.asarray(m), jnp.asarray(c), (12, 10))
    host, _ = gmm_image(m, c, w, shape=(12, 10))
    np.testing.assert_allclose(np.asarray(ours), host, rtol=1e-12, atol=1e-12)


@pytest.mark.slow  # its own programs (25-60 s cold): CI, not the quick lane
def test_gradient_in_the_gmm_parameters(case):
    """W2^2 between Diracs and a GMM rastered on 12 x 10 pixels, differentiated in the
    mixture's means, covariances and weights (through gmm_values and the normalisation),
    against central differences of tight solves, one random direction per parameter."""
    y, nu, _ = case
    w, m, c = (jnp.asarray(a) for a in GMM3)

    def loss(w, m, c):
        return w2(y, density_from_values(gmm_values(w, m, c, (12, 10))), nu)

    grads = jax.grad(loss, argnums=(0, 1, 2))(w, m, c)
    rng = np.random.default_rng(4)
    h = 1e-6
    for i, g in enumerate(grads):
        d = rng.normal(size=g.shape)
        if i == 2:
            d = 0.5 * (d + np.swapaxes(d, 1, 2)) * 1e-2  # symmetric, small against covs
        d = jnp.asarray(d)

        def at(t, i=i, d=d):
            p = [w, m, c]
            p[i] = p[i] + t * d
            return _tight(y, nu, gmm_values(*p, (12, 10)))

        fd = (at(h) - at(-h)) / (2 * h)
        # as for the pixel values (the chain to the parameters is exact jnp autodiff)
        assert float(jnp.sum(g * d)) == pytest.approx(fd, rel=1e-6)
        assert abs(fd) > 1e-5
