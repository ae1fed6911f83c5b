"""The stage densities of a cold semi-discrete solve (gmmot_core.continuation).

Each stage must be a pixel-constant density of mass 1 whose prefix sums agree with its
values (the cell integrals read only those), and the blur must have the width it says.
The prefix sums are checked against :func:`image_density`, which builds them in numpy
from the blurred values: an independent route to the same numbers.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from gmmot_core.semidiscrete import density as continuation
from gmmot_core.semidiscrete.density import image_density


def _disk(res: int) -> np.ndarray:
    t = (np.arange(res) + 0.5) / res
    x, y = np.meshgrid(t, t, indexing="ij")
    return ((x - 0.5) ** 2 + (y - 0.45) ** 2 < 0.3**2).astype(float)


def test_a_blurred_impulse_has_the_asked_width_and_keeps_its_mass(x64):
    """A one-pixel impulse at the centre of a 256 x 128 image on [0, 2] x [0, 1], blurred
    with ``s = 1/16``: the variance of its pixel weights along each axis is that of a
    normal of width ``sigma = s BLUR_WIDTH (hi - lo)`` cut at ``BLUR_CUT`` sigmas
    (``sigma^2 (1 - 2 c phi(c) / (2 Phi(c) - 1))``, c = 4: 0.107% below ``sigma^2``;
    sampled at >= 5 pixels per sigma the sums are exact to ~1e-12, and the cut falls
    between pixels: tolerance 1e-4 relative), it is centred, and its mass stays 1."""
    values = np.zeros((256, 128))
    values[128, 64] = 1.0
    dens = image_density(values, hi=(2.0, 1.0))
    s = 1.0 / 16.0
    out = continuation.blurred(dens, s)
    rho = np.asarray(out.rho)
    dx, dy = 2.0 / 256, 1.0 / 128
    assert rho.sum() * dx * dy == pytest.approx(1.0, abs=1e-12)
    assert rho.min() >= 0.0
    x = (np.arange(256) + 0.5) * dx
    y = (np.arange(128) + 0.5) * dy
    px, py = rho.sum(1) * dx * dy, rho.sum(0) * dx * dy
    for p, t, side, centre in ((px, x, 2.0, x[128]), (py, y, 1.0, y[64])):
        assert np.sum(p * t) == pytest.approx(centre, abs=1e-12)
        sigma = s * continuation.BLUR_WIDTH * side
        var = np.sum(p * (t - centre) ** 2)
        c = continuation.BLUR_CUT
        phi = math.exp(-0.5 * c * c) / math.sqrt(2 * math.pi)
        cut = 1.0 - 2 * c * phi / math.erf(c / math.sqrt(2))
        assert var / sigma**2 == pytest.approx(cut, rel=1e-4)


def test_blur_at_the_edge_keeps_the_mass_in_the_box(x64):
    """Mass next to the border is not lost (sdot's filter renormalised at the edges)."""
    values = np.zeros((64, 64))
    values[0, :8] = 1.0
    out = continuation.blurred(image_density(values), 0.25)
    assert np.asarray(out.rho).sum() / 64**2 == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("k", range(continuation.stage_count((64, 48))))
def test_every_stage_is_a_density_with_consistent_prefix_sums(x64, k):
    """Stage ``k`` of the disk on [-1, 1] x [0, 3] (64 x 48): mass 1, non-negative, its
    prefix sums equal to those numpy builds from its values; the last stage is the
    target exactly, the first is nearly flat (width 0.7 of the box)."""
    dens = image_density(_disk(64)[:, :48] + 1e-9, lo=(-1.0, 0.0), hi=(1.0, 3.0))
    out = continuation.stage_density(dens, jnp.asarray(k))
    rho = np.asarray(out.rho)
    assert rho.shape == (64, 48) and rho.min() >= 0.0
    assert rho.sum() * (2.0 / 64) * (3.0 / 48) == pytest.approx(1.0, abs=1e-12)
    ref = image_density(rho, lo=(-1.0, 0.0), hi=(1.0, 3.0))
    for a, b in ((out.s0, ref.s0), (out.s1, ref.s1), (out.s2, ref.s2)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-12)
    if k == continuation.stage_count((64, 48)) - 1:
        for a, b in zip(out, dens, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    if k == 0:  # the disk's 1e9 contrast is down to a few times
        assert rho.max() / rho.min() < 5.0


def test_the_blur_stages_end_below_half_a_pixel():
    """Widths halve from 1 until below half a pixel on the finer axis (and no further
    than a quarter: each stage costs diagrams)."""
    for shape in ((64, 64), (256, 100), (100, 300)):
        k = continuation.stage_count(shape) - 2  # the last blurred stage
        last = 2.0**-k * continuation.BLUR_WIDTH * max(shape)  # in pixels
        assert 0.25 <= last <= 0.5, (shape, last)
    assert math.isclose(continuation.BLUR_WIDTH, 0.5 * math.sqrt(2.0))
