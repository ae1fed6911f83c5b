"""Continuation for a cold semi-discrete solve: a sequence of stage densities that starts
near the uniform one and ends at the target, each solved loosely from the last.

Two schedules, indexed together by one stage counter ``k`` (see :func:`stage_density`):

- **blend** (stages ``0 .. len(BLEND) - 1``): ``(1 - s) rho + s / area`` for the shares
  in :data:`BLEND`. Cheapest on smooth targets (the tutorial's two Gaussians).
- **blur** (the stages after): ``rho`` convolved with a Gaussian of width ``s * diameter
  / sqrt 2`` per axis, ``s`` halved per stage from 1 until the width is below half a
  pixel, then ``rho`` itself (sdot's Newton stops the blur near a pixel; the extra half
  width took the last step from 1/256 of a full one to 1/64: 67 -> 56 diagrams on a disk
  at N = 4000). Slower there (more stages), but it is the
  one that converges where the mass sits on part of the box with sharp edges (a disk or
  an annulus on an empty background): a blend keeps those edges at every stage, and
  cells astride them stall Newton.

Every stage density is pixel-constant on the same grid and has mass 1.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from gmmot_core.laguerre import ImageDensity

# uniform share of the density in the blend stages (the last is the target itself)
BLEND = (1.0, 0.3, 0.08, 0.0)
# blur widths: sigma = s * BLUR_WIDTH * (hi - lo) per axis, s = 1, 1/2, 1/4, ...
BLUR_WIDTH = 0.5 * math.sqrt(2.0)
# a blur's Gaussian is cut at this many sigmas (as sdot's separable filter)
BLUR_CUT = 4.0


def blur_stages(shape: tuple[int, int]) -> int:
    """Blur stages for a ``[W, H]`` image: ``s`` halved from 1 until the width is ~0.35
    pixel on the finer axis (``log2(max(W, H)) + 2`` stages), then the image."""
    return math.floor(math.log2(max(shape))) + 2


def stage_count(shape: tuple[int, int]) -> int:
    """Stages of both schedules together: blend, then blur (each ending on the image)."""
    return len(BLEND) + blur_stages(shape) + 1


def first_blur_stage() -> int:
    return len(BLEND)


def blend(density: ImageDensity, share) -> ImageDensity:
    """``(1 - share) rho + share / area``: the density mixed with the uniform one."""
    wdt = density.rho.shape[0]
    dt = density.rho.dtype
    lo, hi = density.lo, density.hi
    c = 1.0 / ((hi[0] - lo[0]) * (hi[1] - lo[1]))
    xs = lo[0] + (hi[0] - lo[0]) / wdt * jnp.arange(wdt + 1, dtype=dt)
    pref = [c * (xs ** (k + 1) - lo[0] ** (k + 1)) / (k + 1) for k in range(3)]  # [W + 1]
    mix = lambda a, b: (1.0 - share) * a + share * b  # noqa: E731
    return density._replace(
        rho=mix(density.rho, c),
        s0=mix(density.s0, pref[0][None, :]),
        s1=mix(density.s1, pref[1][None, :]),
        s2=mix(density.s2, pref[2][None, :]),
    )


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


# an edge: neighbouring pixels whose values differ by EDGE_RATIO or more, the larger at
# least EDGE_FLOOR of the peak (the tutorial's Gaussians differ by at most 3x between
# neighbours; a disk on an upload floor by 1e9)
EDGE_RATIO = 1e4
EDGE_FLOOR = 1e-3


def has_sharp_edges(density: ImageDensity) -> jax.Array:
    """Whether mass meets an (almost) empty pixel across a pixel side: the targets where
    the blend stalls, so a cold solve starts on the blur schedule."""
    rho = density.rho
    floor = EDGE_FLOOR * jnp.max(rho)

    def edge(a, b):
        hi, lo = jnp.maximum(a, b), jnp.minimum(a, b)
        return jnp.any((hi >= floor) & (lo * EDGE_RATIO <= hi))

    return edge(rho[1:], rho[:-1]) | edge(rho[:, 1:], rho[:, :-1])


def is_target(k, shape: tuple[int, int]):
    """Whether stage ``k`` is the target itself (the last of either schedule)."""
    return (k == len(BLEND) - 1) | (k == stage_count(shape) - 1)


def stage_density(density: ImageDensity, k) -> ImageDensity:
    """The density of stage ``k`` (traced) of :func:`stage_count`'s sequence."""
    nb = len(BLEND)
    dt = density.rho.dtype
    shares = jnp.asarray(BLEND, dt)
    branch = jnp.where(is_target(k, density.rho.shape), 0, jnp.where(k < nb, 1, 2))
    return jax.lax.switch(
        branch,
        (
            lambda: density,
            lambda: blend(density, shares[jnp.minimum(k, nb - 1)]),
            lambda: blurred(density, jnp.exp2(-(k - nb).astype(dt))),
        ),
    )
