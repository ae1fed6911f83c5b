"""Shape buckets: a solve padded with inert Diracs (mass 0) is the unpadded solve.

The padded rows own no cell and cut none, so the diagram of the user's Diracs, and hence
every Newton iterate, is the same; only the order of floating-point operations in the
cell builder can differ (a different candidate grid at a different N). Tolerances: x64,
and 1e-12 relative on W2^2 and the weights (the solves stop at 1e-11 on the masses, so a
rounding difference in one step could move the result by at most that; measured: equal
to ~1e-15).

The descents run the app's own program (:func:`gmmot_runs.descent.frames`: the cold
solve is a frame of one ``lr = 0`` step), at buckets and grids the app and its tests
compile anyway, so that this file adds few programs of its own.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gmmot_core.buckets import (
    IMAGE_SIDES,
    bucket,
    buckets_up_to,
    image_grid,
    pad_diracs,
    pad_points,
)
from gmmot_core.semidiscrete.density import image_density, stage_count
from gmmot_core.semidiscrete.descent import w2_solve
from gmmot_core.targets import MAX_SIDE
from gmmot_runs.descent import cold_state, frames, run_density, run_sizes

TOL = 1e-11


def _smooth_image(shape=(64, 64)):
    t = [(np.arange(s) + 0.5) / s for s in shape]
    x, y = np.meshgrid(*t, indexing="ij")
    return 1.0 + 3.0 * np.exp(-((x - 0.3) ** 2 + (y - 0.6) ** 2) / 0.05) + 0.5 * x


def _case(n, size, seed, hi=(1.0, 1.0)):
    rng = np.random.default_rng(seed)
    y = (0.05 + 0.9 * rng.random((n, 2))) * np.asarray(hi)
    nu = rng.random(n) + 0.5
    nu = nu / nu.sum()
    yp, nup = pad_diracs(y, nu, size)
    return jnp.asarray(y), jnp.asarray(nu), jnp.asarray(yp), jnp.asarray(nup)


def _cold_then_steps(dens, y, nu, lr, lloyd, steps):
    """The cold solve (one frame of one ``lr = 0`` step from Voronoi weights), then a
    frame of ``steps`` steps: ``(cold, cold trace, state, trace, cells)``."""
    sizes = run_sizes(y.shape[0], dens.rho.shape)
    start = cold_state(y, dens, sizes)
    cold, cold_trace, sizes, _ = frames(start, dens, nu, sizes, 0.0, False, 1)
    state, trace, _, cells = frames(cold, dens, nu, sizes, lr, lloyd, steps)
    return cold, cold_trace, state, trace, cells


def _assert_same_solve(got, got_trace, ref, ref_trace, n):
    """``got`` (padded to more rows) is ``ref``: the same Newton path, W2^2, weights,
    masses and cell neighbours; its inert rows own no mass and no cell."""
    assert int(ref.status) == 0 and int(got.status) == 0
    np.testing.assert_array_equal(got_trace.iterations, ref_trace.iterations)
    np.testing.assert_array_equal(got_trace.evaluations, ref_trace.evaluations)
    assert float(got.w2) == pytest.approx(float(ref.w2), rel=1e-12)
    # weights are defined up to a constant; both start from the same cold weights
    np.testing.assert_allclose(got.weights[:n], ref.weights, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.masses[:n], ref.masses, rtol=0, atol=1e-13)
    assert np.all(np.asarray(got.masses[n:]) == 0.0)
    assert np.all(np.asarray(got.labels[n:]) == -1)
    # the same neighbours across the cell edges (the solves' own cells, certified)
    for i in range(n):
        mine = set(np.asarray(got.labels[i]).tolist()) - {-1}
        assert mine == set(np.asarray(ref.labels[i]).tolist()) - {-1}
        assert all(j < n for j in mine)


def test_buckets_step_by_at_most_the_ratio():
    b = buckets_up_to(5000)
    assert b[0] >= 64 and b[-1] >= 5000
    assert all(1.0 < q / p <= 1.5 + 8 / p for p, q in itertools.pairwise(b))
    assert all(bucket(n) >= n and bucket(n) in b for n in (1, 64, 65, 200, 2000, 5000))


def test_every_picture_lands_on_one_of_five_grids():
    """Each picture (any shape an upload reaches: at most MAX_SIDE a side) is held in the
    square of its longer side's class: four grids in all, so four programs per Dirac
    bucket; a picture and its transpose share one; each holds the picture and is less
    than twice its longer side (a solve's piece budget follows that side)."""
    grids = set()
    for w in range(1, MAX_SIDE + 1):
        for h in (1, w // 3 + 1, w):
            g = image_grid((w, h))
            assert g == image_grid((h, w)) and g[0] == g[1] in IMAGE_SIDES
            assert max(w, h) <= g[0] < max(2 * max(w, h), 65)
            grids.add(g)
    assert grids == {(64, 64), (128, 128), (256, 256), (512, 512)}
    assert image_grid((1024, 700)) == (1024, 1024) and image_grid((1500, 10)) == (1500, 1500)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n", "size", "lr", "lloyd"),
    [(64, 96, 0.5, False), (328, 488, 0.0, True)],  # all pairs; candidate grid (N > 256)
)
def test_padded_descent_is_the_unpadded_one(x64, n, size, lr, lloyd):
    """A bucket's Diracs (no padding) against the same Diracs in the next bucket, by the
    app's programs of both buckets: the same cold solve, then five steps (ring
    candidates from the last diagram above 256 Diracs) with the same trace, positions
    and cells, and the inert Diracs never move."""
    dens = run_density(_smooth_image())
    y, nu, yp, nup = _case(n, size, seed=n + 1)
    assert bucket(n) == n and bucket(size) == size
    c0, ct, s, trace, cells = _cold_then_steps(dens, y, nu, lr, lloyd, 5)
    p0, pct, p, ptrace, pcells = _cold_then_steps(dens, yp, nup, lr, lloyd, 5)
    _assert_same_solve(p0, pct, c0, ct, n)
    _assert_same_solve(p, ptrace, s, trace, n)
    np.testing.assert_allclose(ptrace.w2, trace.w2, rtol=1e-12, atol=0)
    np.testing.assert_allclose(ptrace.mass_error, trace.mass_error, rtol=0, atol=1e-11)
    np.testing.assert_allclose(p.positions[:n], s.positions, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(p.positions[n:], yp[n:])
    # the drawn cells: none for the inert Diracs, the unpadded ones for the others
    assert np.all(np.asarray(pcells.count[n:]) == 0)
    np.testing.assert_array_equal(pcells.count[:n], cells.count)


@pytest.mark.slow
def test_padded_gradients_are_the_unpadded_ones(x64):
    """W2^2's gradients in positions and masses (the weights shifted to mean zero over
    the user's Diracs); the inert rows get zero."""
    rng = np.random.default_rng(7)
    dens = image_density(rng.uniform(0.2, 2.0, (12, 10)))
    n = 40
    y, nu, yp, nup = _case(n, bucket(n), seed=7)
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
    """A 45 x 60 image on [0, 0.75] x [0, 1] on the app's 64 x 64 grid (zero pixels beyond
    the box, which the cells never reach), with its 64 Diracs padded to 96 too: the same
    cold solve through the same blurred stages (their count is the image's, not the
    array's), then three Lloyd steps. Tolerances as above (only summation order
    differs)."""
    t = [(np.arange(s) + 0.5) / s for s in (45, 60)]
    x, yy = np.meshgrid(*t, indexing="ij")
    img = 1e-6 + np.exp(-((x - 0.3) ** 2 + (yy - 0.6) ** 2) / 0.01) + 0.3 * (x > 0.7)
    dens = image_density(img, hi=(0.75, 1.0))
    padded = run_density(img)
    assert padded.rho.shape == (64, 64) and stage_count((64, 64)) > stage_count(img.shape)
    np.testing.assert_array_equal(padded.hi, dens.hi)
    n = 64
    y, nu, yp, nup = _case(n, 96, seed=7, hi=(0.75, 1.0))
    c0, ct, s, trace, _ = _cold_then_steps(dens, y, nu, 0.0, True, 3)
    p0, pct, p, ptrace, _ = _cold_then_steps(padded, yp, nup, 0.0, True, 3)
    assert int(ct.evaluations[0]) > 20  # the cold start ran through the blurred stages
    _assert_same_solve(p0, pct, c0, ct, n)
    _assert_same_solve(p, ptrace, s, trace, n)
    np.testing.assert_allclose(ptrace.w2, trace.w2, rtol=1e-12, atol=0)
    np.testing.assert_allclose(p.positions[:n], s.positions, rtol=0, atol=1e-12)
