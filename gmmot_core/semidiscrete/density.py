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
    ``pixels [2]``: the image's pixel counts (float). Within a padded array (see
    :func:`pad_density`) the image is the first ``pixels`` of each axis, on ``lo``-``hi``;
    the pixels beyond ``hi`` are zeros that no cell reaches.
    """

    rho: jax.Array
    lo: jax.Array
    hi: jax.Array
    s0: jax.Array
    s1: jax.Array
    s2: jax.Array
    pixels: jax.Array


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
    arrays = (rho, lo, hi, *pref, np.array(v.shape, np.float64))
    return ImageDensity(*(jnp.asarray(a, dtype) for a in arrays))


def pad_density(density: ImageDensity, shape: tuple[int, int]) -> ImageDensity:
    """``density`` on a ``shape`` array (each side >= the image's): zero pixels appended
    beyond ``hi`` on each axis, prefix sums extended (their rows of zeros, their columns
    constant). The box, the pixel size and every integral over the box are unchanged, so
    one program serves every image that fits ``shape`` (cells are clipped to the box)."""
    wdt, hgt = density.rho.shape
    pw, ph = shape[0] - wdt, shape[1] - hgt
    if pw < 0 or ph < 0:
        raise ValueError(f"a {wdt} x {hgt} image does not fit a {shape[0]} x {shape[1]} grid")
    rho = jnp.pad(density.rho, ((0, pw), (0, ph)))
    pref = [
        jnp.pad(jnp.pad(s, ((0, 0), (0, pw)), mode="edge"), ((0, ph), (0, 0)))
        for s in (density.s0, density.s1, density.s2)
    ]
    return density._replace(rho=rho, s0=pref[0], s1=pref[1], s2=pref[2])


def prefix_sums(rho, lo, hi, pixels=None) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Row prefix sums ``s0, s1, s2 [H, W + 1]`` of ``rho [W, H]`` on ``lo``-``hi`` (see
    :class:`ImageDensity`; ``pixels``: the image's counts in a padded ``rho``), in jnp
    (traceable and differentiable in ``rho``)."""
    wdt, hgt = rho.shape
    dt = rho.dtype
    count = wdt if pixels is None else pixels[0]
    xs = lo[0] + (hi[0] - lo[0]) / count * jnp.arange(wdt + 1, dtype=dt)
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
    pixels = jnp.array(v.shape, dt)
    return ImageDensity(rho, lo, hi, *prefix_sums(rho, lo, hi), pixels)


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


def last_stage(density: ImageDensity) -> jax.Array:
    """``stage_count(image shape) - 1`` (traced: a padded array holds images of many
    shapes), from the integer ``floor(log2(max(W, H)))``."""
    m = jnp.max(density.pixels).astype(jnp.int32)
    return (31 - jax.lax.clz(m)) + 2


def _gaussian_filter(n: int, count, lo, hi, s, dt) -> jax.Array:
    """``[n, n]`` column-stochastic filter on the first ``count`` of ``n`` pixels (zero
    elsewhere): column ``j`` spreads pixel ``j``'s mass over the pixels within
    ``BLUR_CUT`` sigmas (renormalised at the image's edges: no mass leaves it)."""
    i = jnp.arange(n, dtype=dt)
    x = lo + (hi - lo) * (i + 0.5) / count
    sigma = s * BLUR_WIDTH * (hi - lo)
    d = (x[:, None] - x[None, :]) / sigma
    inside = (i[:, None] < count) & (i[None, :] < count)
    g = jnp.where(inside & (jnp.abs(d) <= BLUR_CUT), jnp.exp(-0.5 * d**2), 0.0)
    total = jnp.sum(g, 0, keepdims=True)
    return g / jnp.where(total > 0, total, 1.0)


def blurred(density: ImageDensity, s) -> ImageDensity:
    """``rho`` blurred by a separable Gaussian of width ``s * BLUR_WIDTH * (hi - lo)`` per
    axis (``s > 0``, traced), with its row prefix sums rebuilt."""
    rho, lo, hi = density.rho, density.lo, density.hi
    wdt, hgt = rho.shape
    dt = rho.dtype
    px = density.pixels
    gx = _gaussian_filter(wdt, px[0], lo[0], hi[0], s, dt)
    gy = _gaussian_filter(hgt, px[1], lo[1], hi[1], s, dt)
    r = gx @ rho @ gy.T
    pref = prefix_sums(r, lo, hi, px)
    return density._replace(rho=r, s0=pref[0], s1=pref[1], s2=pref[2])


def stage_density(density: ImageDensity, k) -> ImageDensity:
    """The density of stage ``k`` (traced)."""
    dt = density.rho.dtype
    return jax.lax.cond(
        k == last_stage(density),
        lambda: density,
        lambda: blurred(density, jnp.exp2(-jnp.asarray(k, dt))),
    )


def cold_weights(y, density: ImageDensity):
    """A start where every cell is non-empty: ``w_i = dist(y_i, box)^2``. With ``p_i`` the
    projection of ``y_i`` on the box, ``|x - y_i|^2 >= |x - p_i|^2 + w_i`` on the box,
    so ``p_i`` lies in cell ``i`` (Voronoi weights 0 for Diracs inside)."""
    p = jnp.clip(y, density.lo, density.hi)
    return jnp.sum((y - p) ** 2, -1)
