"""Continuation for a cold semi-discrete solve: stage densities that start near the
uniform one and end at the target, each solved loosely from the last (as sdot's Newton).

Stage ``k`` is ``rho`` convolved with a Gaussian of width ``2^-k * diameter / sqrt 2``
per axis, halved per stage until it is below half a pixel; the last stage is ``rho``
itself. Every stage density is pixel-constant on the same grid and has mass 1.

Measured against blending with the uniform density, ``(1 - s) rho + s / area`` for
``s`` = 1, 0.3, 0.08, 0 (our earlier continuation), diagrams per cold solve: a disk or an
annulus on an empty background, N = 4000: blend stalls at its 100-step cap, blur 40-52;
random 4-component GMM targets on 128^2: blend 30-58, blur 31-38; the tutorial target:
blend 25-28 / 33-37 (N = 1000 / 5000), blur 30-33 / 32-33. The blend keeps sharp edges at
every stage, and cells astride them stall Newton; the blur costs about the same
everywhere. Sdot stops its blur near a pixel; the extra half width took the last
step from 1/256 of a full one to 1/64 (disk at N = 4000: 67 -> 56 diagrams).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from gmmot_core.laguerre import ImageDensity

# blur widths: sigma = 2^-k * BLUR_WIDTH * (hi - lo) per axis
BLUR_WIDTH = 0.5 * math.sqrt(2.0)
# a blur's Gaussian is cut at this many sigmas (as sdot's separable filter)
BLUR_CUT = 4.0


def stage_count(shape: tuple[int, int]) -> int:
    """Stages for a ``[W, H]`` image: widths halved from ``BLUR_WIDTH (hi - lo)`` until
    ~0.35 pixel on the finer axis (``log2(max(W, H)) + 2`` stages), then the image."""
    return math.floor(math.log2(max(shape))) + 3


def _gaussian_filter(n: int, lo, hi, s, dt) -> jax.Array:
    """``[n, n]`` column-stochastic filter: column ``j`` spreads pixel ``j``'s mass over
    the pixels within ``BLUR_CUT`` sigmas (renormalised at the edges: no mass leaves)."""
    x = lo + (hi - lo) * (jnp.arange(n, dtype=dt) + 0.5) / n
    sigma = s * BLUR_WIDTH * (hi - lo)
    d = (x[:, None] - x[None, :]) / sigma
    g = jnp.where(jnp.abs(d) <= BLUR_CUT, jnp.exp(-0.5 * d**2), 0.0)
    return g / jnp.sum(g, 0, keepdims=True)


def blurred(density: ImageDensity, s) -> ImageDensity:
    """``rho`` blurred by a separable Gaussian of width ``s * BLUR_WIDTH * (hi - lo)`` per
    axis (``s > 0``, traced), with its row prefix sums rebuilt."""
    rho, lo, hi = density.rho, density.lo, density.hi
    wdt, hgt = rho.shape
    dt = rho.dtype
    gx = _gaussian_filter(wdt, lo[0], hi[0], s, dt)
    gy = _gaussian_filter(hgt, lo[1], hi[1], s, dt)
    r = gx @ rho @ gy.T
    xs = lo[0] + (hi[0] - lo[0]) / wdt * jnp.arange(wdt + 1, dtype=dt)
    zero = jnp.zeros((1, hgt), dt)
    pref = [
        jnp.concatenate([zero, jnp.cumsum(r * (jnp.diff(xs ** (k + 1)) / (k + 1))[:, None], 0)]).T
        for k in range(3)
    ]  # [H, W + 1]
    return density._replace(rho=r, s0=pref[0], s1=pref[1], s2=pref[2])


def is_target(k, shape: tuple[int, int]):
    """Whether stage ``k`` is the target itself (the last)."""
    return k == stage_count(shape) - 1


def stage_density(density: ImageDensity, k) -> ImageDensity:
    """The density of stage ``k`` (traced)."""
    dt = density.rho.dtype
    return jax.lax.cond(
        is_target(k, density.rho.shape),
        lambda: density,
        lambda: blurred(density, jnp.exp2(-jnp.asarray(k, dt))),
    )
