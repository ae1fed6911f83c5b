"""Log-domain Sinkhorn vs OTT-JAX 0.6.0 ``Sinkhorn()`` (defaults) on the same cost matrices.

Same algorithm and stopping rule, so we expect float32 round-off only: couplings to
1e-5 absolute (entries <= 1), potentials to 1e-4 absolute after removing the free
constant (balanced), reg_ot_cost to 1e-5 relative, identical iteration counts.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_spd
from ott.geometry import geometry
from ott.problems.linear import linear_problem
from ott.solvers.linear import sinkhorn as ott_sinkhorn

from gmmot_core import bures_cost_matrix, sinkhorn
from gmmot_core.sinkhorn import rho_from_tau, tau_from_rho


def _ott(cost, a, b, eps, tau):
    geom = geometry.Geometry(cost_matrix=cost, epsilon=eps)
    prob = linear_problem.LinearProblem(geom, a=a, b=b, tau_a=tau, tau_b=tau)
    return ott_sinkhorn.Sinkhorn()(prob)


def _problem(rng, k0=4, k1=5):
    m0, m1 = rng.normal(size=(k0, 2)), rng.normal(size=(k1, 2)) + 0.5
    c0, c1 = random_spd(rng, k0, 4.0), random_spd(rng, k1, 4.0)
    cost = bures_cost_matrix(*[jnp.asarray(x, jnp.float32) for x in (m0, c0, m1, c1)])
    a = jnp.asarray(rng.dirichlet(np.ones(k0)), jnp.float32)
    b = jnp.asarray(rng.dirichlet(np.ones(k1)), jnp.float32)
    return cost, a, b


CASES = [(eps, tau) for eps in (0.05, 0.3, 2.0) for tau in (1.0, 0.95, 0.5)]


@pytest.mark.parametrize(("eps", "tau"), CASES)
def test_matches_ott(rng, eps, tau):
    cost, a, b = _problem(rng)
    ours = jax.jit(sinkhorn)(cost, a, b, eps, tau)
    ref = _ott(cost, a, b, eps, tau)
    assert int(ours.n_iters) == int(ref.n_iters)
    assert bool(ours.converged) == bool(ref.converged)
    np.testing.assert_allclose(ours.coupling, ref.matrix, atol=1e-5)
    np.testing.assert_allclose(ours.reg_ot_cost, ref.reg_ot_cost, rtol=1e-5, atol=1e-6)
    df, dg = np.asarray(ours.f - ref.f), np.asarray(ours.g - ref.g)
    if tau == 1.0:  # potentials are defined up to (f + c, g - c)
        shift = df.mean()
        df, dg = df - shift, dg + shift
    np.testing.assert_allclose(df, 0.0, atol=1e-4 * (1 + np.abs(ref.f).max()))
    np.testing.assert_allclose(dg, 0.0, atol=1e-4 * (1 + np.abs(ref.g).max()))


@pytest.mark.parametrize(("eps", "tau"), [(0.1, 1.0), (0.5, 0.8)])
def test_gradients_match_ott(rng, eps, tau):
    cost, a, b = _problem(rng, 3, 3)

    def ours(c, a, b):
        return sinkhorn(c, a, b, eps, tau).reg_ot_cost

    def ref(c, a, b):
        return _ott(c, a, b, eps, tau).reg_ot_cost

    g_ours = jax.grad(ours, argnums=(0, 1, 2))(cost, a, b)
    g_ref = jax.grad(ref, argnums=(0, 1, 2))(cost, a, b)
    # d/dC is the coupling (Danskin) in both
    np.testing.assert_allclose(g_ours[0], g_ref[0], atol=1e-5)
    np.testing.assert_allclose(g_ours[0], sinkhorn(cost, a, b, eps, tau).coupling, atol=1e-6)
    if tau == 1.0:  # d/da = f - eps log a - eps * sum(b) ... is defined up to a constant
        for go, gr in zip(g_ours[1:], g_ref[1:], strict=True):
            np.testing.assert_allclose(go - go.mean(), gr - gr.mean(), atol=1e-4)
    else:
        for go, gr in zip(g_ours[1:], g_ref[1:], strict=True):
            np.testing.assert_allclose(go, gr, atol=1e-4)


def test_one_compilation_for_all_knobs(rng):
    cost, a, b = _problem(rng)
    traces = []

    @jax.jit
    def solve(cost, a, b, eps, tau, threshold):
        traces.append(1)
        return sinkhorn(cost, a, b, eps, tau, threshold=threshold).reg_ot_cost

    values = [
        solve(cost, a, b, e, t, th)
        for e in (0.01, 0.1, 1.0)
        for t in (1.0, 0.9, 0.3)
        for th in (1e-3, 1e-5)
    ]
    assert len(traces) == 1
    assert np.all(np.isfinite(values)) and len(set(np.round(values, 5))) > 5


def test_warm_start_converges_faster_same_answer(rng):
    cost, a, b = _problem(rng)
    cold = sinkhorn(cost, a, b, 0.05, 1.0, threshold=1e-5)  # float32 floor ~1e-6
    warm = sinkhorn(cost, a, b, 0.05, 1.0, threshold=1e-5, init=(cold.f, cold.g))
    assert int(warm.n_iters) < int(cold.n_iters)
    # both stop at an L1 marginal error <= 1e-5, so entries agree to that
    np.testing.assert_allclose(warm.coupling, cold.coupling, atol=1e-5)


def test_zero_weights_are_masked(rng):
    cost, a, b = _problem(rng)
    a = a.at[1].set(0.0)
    a = a / a.sum()
    ours = sinkhorn(cost, a, b, 0.1, 1.0)
    ref = _ott(cost, a, b, 0.1, 1.0)
    assert np.all(np.asarray(ours.coupling[1]) == 0.0)
    np.testing.assert_allclose(ours.coupling, ref.matrix, atol=1e-5)
    np.testing.assert_allclose(ours.reg_ot_cost, ref.reg_ot_cost, rtol=1e-5)
    grad = jax.grad(lambda c: sinkhorn(c, a, b, 0.1, 1.0).reg_ot_cost)(cost)
    assert np.all(np.isfinite(np.asarray(grad)))


def test_rho_tau_roundtrip():
    eps = jnp.asarray([0.01, 0.1, 1.0])
    rho = jnp.asarray([1.0, 0.5, jnp.inf])
    tau = tau_from_rho(eps, rho)
    np.testing.assert_allclose(tau[:2], [1.0 / 1.01, 0.5 / 0.6], rtol=1e-6)
    assert tau[2] == 1.0
    np.testing.assert_allclose(rho_from_tau(eps, tau)[:2], rho[:2], rtol=1e-5)
    assert jnp.isinf(rho_from_tau(eps, tau)[2])


def test_small_epsilon_flags_instead_of_raising(rng):
    cost, a, b = _problem(rng)
    out = jax.jit(sinkhorn)(cost, a, b, 1e-6, 1.0)
    # log-domain stays finite even at eps=1e-6; the cap is hit and reported
    assert np.all(np.isfinite(np.asarray(out.coupling)))
    assert int(out.n_iters) <= 2000
    assert bool(out.converged) == bool(out.error < 1e-3)
