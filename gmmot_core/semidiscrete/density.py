"""Pixel-constant target densities and the blurred stages of a cold solve's continuation.

Stage ``k`` of the continuation is ``rho`` convolved with a Gaussian of width
``2^-k * diameter / sqrt 2`` per axis, halved per stage until it is below half a pixel;
the last stage is ``rho`` itself. Every stage has mass 1 on the same grid.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class ImageDensity(NamedTuple):
    """Density constant on each pixel of ``[lo_x, hi_x] x [lo_y, hi_y]`` (mass 1).

    ``rho [W, H]``: value on pixel ``(i, j)`` (axis 0 = x), per unit area.
    ``s0, s1, s2 [H, W + 1]``: row prefix sums ``sum_{i' < i} rho[i', j] int t^k dt`` over
    the columns left of column ``i`` (k = 0, 1, 2), for Green's ``F``.
    """

    rho: jax.Array
    lo: jax.Array
    hi: jax.Array
    s0: jax.Array
    s1: jax.Array
    s2: jax.Array


def image_density(values, lo=(0.0, 0.0), hi=(1.0, 1.0), dtype=None) -> ImageDensity:
    """A pixel-constant density from non-negative ``values [W, H]`` (axis 0 = x),
    normalised to total mass 1 on the rectangle ``lo``-``hi``."""
    dtype = dtype or (jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    v = np.asarray(values, np.float64)
    if v.ndim != 2 or min(v.shape) < 1:
        raise ValueError(f"density values must be a 2D array, got shape {v.shape}")
    if not np.all(np.isfinite(v)) or np.any(v < 0) or v.sum() <= 0:
        raise ValueError("density values must be finite, >= 0 and not all zero")
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    w, h = v.shape
    dx, dy = (hi - lo) / (w, h)
    rho = v / (v.sum() * dx * dy)
    xs = lo[0] + dx * np.arange(w + 1)
    col = [rho * (np.diff(xs ** (k + 1)) / (k + 1))[:, None] for k in range(3)]  # [W, H]
    pref = [np.concatenate([np.zeros((1, h)), np.cumsum(c, 0)], 0).T for c in col]  # [H, W+1]
    return ImageDensity(*(jnp.asarray(a, dtype) for a in (rho, lo, hi, *pref)))


def prefix_sums(rho, lo, hi) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Row prefix sums ``s0, s1, s2 [H, W + 1]`` of ``rho [W, H]`` on ``lo``-``hi`` (see
    :class:`ImageDensity`), in jnp (traceable and differentiable in ``rho``)."""
    wdt, hgt = rho.shape
    dt = rho.dtype
    xs = lo[0] + (hi[0] - lo[0]) / wdt * jnp.arange(wdt + 1, dtype=dt)
    zero = jnp.zeros((1, hgt), dt)
    return tuple(
        jnp.concatenate([zero, jnp.cumsum(rho * (jnp.diff(xs ** (k + 1)) / (k + 1))[:, None], 0)]).T
        for k in range(3)
    )


def density_from_values(values, lo=(0.0, 0.0), hi=(1.0, 1.0)) -> ImageDensity:
    """:func:`image_density` in jnp: ``values [W, H] >= 0`` (floating, traced; not
    checked) normalised to mass 1 on ``lo``-``hi``, so that ``W2^2`` can be
    differentiated in the pixel values (and in whatever built them) under ``jit``. The
    prefix sums are in ``values``' dtype (:func:`image_density` builds them in float64)."""
    v = jnp.asarray(values)
    if v.ndim != 2:
        raise ValueError(f"density values must be a 2D array, got shape {v.shape}")
    dt = v.dtype
    lo, hi = jnp.asarray(lo, dt), jnp.asarray(hi, dt)
    cell = jnp.prod((hi - lo) / jnp.array(v.shape, dt))
    rho = v / (jnp.sum(v) * cell)
    return ImageDensity(rho, lo, hi, *prefix_sums(rho, lo, hi))


def gmm_values(
    weights, means, covs, shape: tuple[int, int], lo=(0.0, 0.0), hi=(1.0, 1.0), order: int = 6
) -> jax.Array:
    """Per-pixel mass of the mixture ``weights [K]``, ``means [K, 2]``, ``covs [K, 2, 2]``
    divided by the pixel area, ``[W, H]`` on ``lo``-``hi``, in jnp: differentiable in
    the mixture's parameters (feed it to :func:`density_from_values`). An ``order`` x
    ``order`` Gauss-Legendre rule per pixel (as :func:`gmmot_core.targets.gmm_image`)
    integrates to relative error ~ (h / sigma)^(2 order), h the pixel side."""
    means, covs = jnp.asarray(means), jnp.asarray(covs)
    dt = means.dtype
    weights = jnp.asarray(weights, dt)
    weights = weights / jnp.sum(weights)
    lo, hi = jnp.asarray(lo, dt), jnp.asarray(hi, dt)
    w, h = shape
    step = (hi - lo) / jnp.array([w, h], dt)
    nodes, gw = np.polynomial.legendre.leggauss(order)
    u, gw = jnp.asarray((nodes + 1) / 2, dt), jnp.asarray(gw / 2, dt)  # on [0, 1]
    xs = lo[0] + step[0] * (jnp.arange(w, dtype=dt)[:, None] + u[None, :])  # [W, q]
    ys = lo[1] + step[1] * (jnp.arange(h, dtype=dt)[:, None] + u[None, :])  # [H, q]
    det = covs[:, 0, 0] * covs[:, 1, 1] - covs[:, 0, 1] * covs[:, 1, 0]  # [K]
    inv = jnp.stack([covs[:, 1, 1], -covs[:, 0, 1], covs[:, 0, 0]], -1) / det[:, None]
    norm = weights / (2 * math.pi * jnp.sqrt(det))  # [K]
    ex = xs[None, :, :, None, None] - means[:, 0, None, None, None, None]  # [K, W, q, 1, 1]
    ey = ys[None, None, None, :, :] - means[:, 1, None, None, None, None]  # [K, 1, 1, H, q]
    c = inv[:, :, None, None, None, None]
    q = c[:, 0] * ex**2 + 2 * c[:, 1] * ex * ey + c[:, 2] * ey**2  # [K, W, q, H, q]
    dens = norm[:, None, None, None, None] * jnp.exp(-0.5 * q)
    return jnp.einsum("kaibj,i,j->ab", dens, gw, gw)


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
    pref = prefix_sums(r, lo, hi)
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
