"""Shape buckets: a solve padded with inert Diracs (mass 0) is the unpadded solve.

The padded rows own no cell and cut none, so the diagram of the user's Diracs, and hence
every Newton iterate, is the same; only the order of floating-point operations in the
cell builder can differ (a different candidate grid at a different N). Tolerances: x64,
and 1e-12 relative on W2^2 and the weights (the solves stop at 1e-11 on the masses, so a
rounding difference in one step could move the result by at most that; measured: equal
to ~1e-15).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gmmot_core.buckets import bucket, buckets_up_to, image_grid, pad_diracs, pad_points
from gmmot_core.semidiscrete.density import image_density, pad_density, stage_count
from gmmot_core.semidiscrete.descent import cells_of, descend, descent_init, w2_solve
from gmmot_core.semidiscrete.newton import solve_weights
from gmmot_runs.descent import run_sizes

TOL = 1e-11


def _smooth_image(shape=(48, 40)):
    t = [(np.arange(s) + 0.5) / s for s in shape]
    x, y = np.meshgrid(*t, indexing="ij")
    return 1.0 + 3.0 * np.exp(-((x - 0.3) ** 2 + (y - 0.6) ** 2) / 0.05) + 0.5 * x


def _case(n, pad, seed):
    rng = np.random.default_rng(seed)
    y = 0.05 + 0.9 * rng.random((n, 2))
    nu = rng.random(n) + 0.5
    nu = nu / nu.sum()
    yp, nup = pad_diracs(y, nu, n + pad)
    return jnp.asarray(y), jnp.asarray(nu), jnp.asarray(yp), jnp.asarray(nup)


def test_buckets_step_by_at_most_the_ratio():
    b = buckets_up_to(5000)
    assert b[0] >= 64 and b[-1] >= 5000
    assert all(1.0 < q / p <= 1.5 + 8 / p for p, q in itertools.pairwise(b))
    assert all(bucket(n) >= n and bucket(n) in b for n in (1, 64, 65, 200, 2000, 5000))


@pytest.mark.slow
@pytest.mark.parametrize(("n", "pad"), [(150, 66), (400, 200)])  # all pairs; candidate grid
def test_padded_solve_is_the_unpadded_one(x64, n, pad):
    dens = image_density(_smooth_image())
    y, nu, yp, nup = _case(n, pad, seed=n)
    # the sizes a descent run starts with (run_sizes): the defaults' rescue is outgrown
    # at these N, and each growth was a second compile; the descent test below reuses
    # these programs (same shapes and sizes)
    ref = solve_weights(y, nu, dens, tol=TOL, sizes=run_sizes(n, dens.rho.shape))
    got = solve_weights(yp, nup, dens, tol=TOL, sizes=run_sizes(n + pad, dens.rho.shape))
    assert int(ref.status) == 0 and int(got.status) == 0
    # the same Newton path
    assert int(got.iterations) == int(ref.iterations)
    assert int(got.evaluations) == int(ref.evaluations)
    w2_ref = float(jnp.sum(ref.integrals.second))
    assert float(jnp.sum(got.integrals.second)) == pytest.approx(w2_ref, rel=1e-12)
    # weights are defined up to a constant; both start from the same cold weights
    np.testing.assert_allclose(got.weights[:n], ref.weights, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.integrals.mass[:n], ref.integrals.mass, rtol=0, atol=1e-13)
    # the inert rows: no mass, no cell, weights untouched
    assert np.all(np.asarray(got.integrals.mass[n:]) == 0.0)
    assert np.all(np.asarray(got.integrals.labels[n:]) == -1)
    # the cells of the user's Diracs are the unpadded cells: the same neighbours across
    # their edges (the solves' own cells, certified: status 0)
    for i in range(n):
        mine = set(np.asarray(got.integrals.labels[i])) - {-1}
        assert mine == set(np.asarray(ref.integrals.labels[i])) - {-1}
        assert all(j < n for j in mine)


@pytest.mark.slow
def test_padded_gradients_are_the_unpadded_ones(x64):
    """W2^2's gradients in positions and masses (the weights shifted to mean zero over
    the user's Diracs); the inert rows get zero."""
    dens = image_density(_smooth_image())
    n = 120
    y, nu, yp, nup = _case(n, 40, seed=7)
    (v, *_), (gy, gnu) = _value_and_grads(y, nu, dens)
    (vp, *_), (gyp, gnup) = _value_and_grads(yp, nup, dens)
    assert float(vp) == pytest.approx(float(v), rel=1e-12)
    np.testing.assert_allclose(gyp[:n], gy, rtol=0, atol=1e-11)
    np.testing.assert_allclose(gnup[:n], gnu, rtol=0, atol=1e-11)
    assert np.all(np.asarray(gyp[n:]) == 0.0) and np.all(np.asarray(gnup[n:]) == 0.0)


def _value_and_grads(y, nu, dens):
    """W2^2 and its gradients in one solve (value_and_grad: not a second forward pass)."""
    value, grads = jax.value_and_grad(lambda y, nu: w2_solve(y, dens, nu)[0], (0, 1))(y, nu)
    return (value,), grads


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n", "pad", "lr", "lloyd"), [(150, 66, 0.5, False), (400, 200, 0.0, True)]
)
def test_padded_descent_is_the_unpadded_one(x64, n, pad, lr, lloyd):
    """Five warm descent steps (ring candidates from the last diagram above 256 Diracs):
    the same trace and positions, and the inert Diracs never move."""
    dens = image_density(_smooth_image())
    y, nu, yp, nup = _case(n, pad, seed=n + 1)
    s0, sizes = descent_init(y, dens, nu, tol=TOL, sizes=run_sizes(n, dens.rho.shape))
    p0, psizes = descent_init(yp, dens, nup, tol=TOL, sizes=run_sizes(n + pad, dens.rho.shape))
    s, trace, sizes, _ = descend(s0, dens, nu, lr, lloyd, 5, sizes, tol=TOL)
    p, ptrace, psizes, cells = descend(
        p0, dens, nup, lr, lloyd, 5, psizes, tol=TOL, with_cells=True
    )
    assert int(s.status) == 0 and int(p.status) == 0
    np.testing.assert_allclose(ptrace.w2, trace.w2, rtol=1e-12, atol=0)
    np.testing.assert_allclose(ptrace.mass_error, trace.mass_error, rtol=0, atol=1e-11)
    np.testing.assert_allclose(p.positions[:n], s.positions, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(p.positions[n:], yp[n:])
    assert np.all(np.asarray(cells.count[n:]) == 0)
    drawn = cells_of(p, dens, psizes, nup)
    assert np.all(np.asarray(drawn.count[n:]) == 0)
    np.testing.assert_array_equal(drawn.count[:n], cells.count[:n])


@pytest.mark.slow
def test_padded_clouds_give_the_unpadded_coupled_em(x64):
    """Zero-weight points (cloud buckets) count in no E-step sum, so every EM iterate,
    trace value and the final coupling match. Tolerance 1e-10: only the summation order
    of the padded reductions differs (x64)."""
    from gmmot_core import coupled_em as ce
    from gmmot_core import kmeans_pp, synthetic

    x0, x1 = (np.asarray(x, np.float64) for x in synthetic.demo_pair(700, 3))
    rng = np.random.default_rng(3)
    w0, w1 = rng.uniform(0.2, 2.0, len(x0)), rng.uniform(0.2, 2.0, len(x1))
    init = kmeans_pp(jax.random.key(0), jnp.asarray(np.concatenate([x0, x1])), 3)
    cfg = ce.CoupledEMConfig(em_steps=6, m_steps=5, solver="sinkhorn", trace_length=6)
    knobs = ce.Knobs.make(0.1, 0.8, 0.1, 1e-2)
    run = jax.jit(ce.run, static_argnames="config")

    def fit(p0, p1, q0, q1):
        out = run(ce.init(init, init, knobs, cfg), ce.PairData.make(p0, p1, q0, q1), cfg)
        return out, ce.mixtures(out), ce.coupling_report(out, cfg)

    ref = fit(x0, x1, w0, w1)
    p0, q0 = pad_points(x0, w0, bucket(len(x0), 512))
    p1, q1 = pad_points(x1, w1, bucket(len(x1), 512))
    assert len(p0) > len(x0) and len(p1) > len(x1)
    got = fit(p0, p1, q0, q1)
    for key in ("q0", "q1", "transport", "objective"):
        np.testing.assert_allclose(
            getattr(got[0].traces, key), getattr(ref[0].traces, key), rtol=1e-10, err_msg=key
        )
    np.testing.assert_array_equal(got[0].traces.sinkhorn_iters, ref[0].traces.sinkhorn_iters)
    for g_got, g_ref in zip(got[1], ref[1], strict=True):
        for a, b in zip(g_got, g_ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[2].coupling, ref[2].coupling, rtol=1e-10, atol=1e-14)


@pytest.mark.slow
def test_padded_image_is_the_unpadded_one(x64):
    """A 45 x 30 image on [0, 1.5] x [0, 1] in a 64 x 32 array (zero pixels beyond the
    box, which the cells never reach): the same cold solve through the same blurred
    stages (their count is the image's, not the array's), then three Lloyd steps with
    inert Diracs too. Tolerances as above (only summation order differs)."""
    t = [(np.arange(s) + 0.5) / s for s in (45, 30)]
    x, yy = np.meshgrid(*t, indexing="ij")
    img = 1e-6 + np.exp(-((x - 0.3) ** 2 + (yy - 0.6) ** 2) / 0.01) + 0.3 * (x > 0.7)
    dens = image_density(img, hi=(1.5, 1.0))
    padded = pad_density(dens, image_grid(img.shape))
    assert padded.rho.shape == (64, 32) and stage_count((64, 32)) > stage_count(img.shape)
    rng = np.random.default_rng(7)
    y = jnp.asarray(rng.random((150, 2)) * np.array([1.5, 1.0]))
    nu = jnp.full(150, 1 / 150)
    ref = solve_weights(y, nu, dens, tol=TOL)
    got = solve_weights(y, nu, padded, tol=TOL)
    assert int(ref.status) == 0 and int(got.status) == 0
    assert int(ref.evaluations) > 20  # the cold start ran through the blurred stages
    assert int(got.iterations) == int(ref.iterations)
    assert int(got.evaluations) == int(ref.evaluations)
    w2_ref = float(jnp.sum(ref.integrals.second))
    assert float(jnp.sum(got.integrals.second)) == pytest.approx(w2_ref, rel=1e-12)
    np.testing.assert_allclose(got.weights, ref.weights, rtol=0, atol=1e-12 * w2_ref)
    np.testing.assert_allclose(got.integrals.mass, ref.integrals.mass, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(got.integrals.labels, ref.integrals.labels)

    yp, nup = (jnp.asarray(a) for a in pad_diracs(y, nu, bucket(150)))
    s0, sizes = descent_init(y, dens, nu, tol=TOL)
    p0, psizes = descent_init(yp, padded, nup, tol=TOL)
    s, trace, _, _ = descend(s0, dens, nu, 0.0, True, 3, sizes, tol=TOL)
    p, ptrace, _, _ = descend(p0, padded, nup, 0.0, True, 3, psizes, tol=TOL)
    assert int(s.status) == 0 and int(p.status) == 0
    np.testing.assert_allclose(ptrace.w2, trace.w2, rtol=1e-12, atol=0)
    np.testing.assert_allclose(p.positions[:150], s.positions, rtol=0, atol=1e-12)
