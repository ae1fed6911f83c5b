"""Target densities for the Dirac descent, as pixel values ``[W, H]`` (axis 0 = x) on a box.

- :func:`tutorial_image`: the two-peak image of sdot's tutorial (64 x 64 on [0, 1]^2).
- :func:`gmm_image`: the mass of a Gaussian mixture on each pixel (Gauss-Legendre per
  pixel), with the mass that falls outside the box reported (the density is then
  renormalised on the box).
- :func:`mixture_in_box`: any fitted mixture moved into [0, 1]^2 (a similarity), e.g.
  one of the coupled-EM fits, as a ``gaussian mixture`` target.
- :func:`image_from_bytes`: an uploaded PNG / JPEG as a grayscale density, darker = more
  mass (or brighter with ``invert``), with size checks.

All return numpy float64 arrays, normalised by
:func:`gmmot_core.semidiscrete.density.image_density`.
"""

from __future__ import annotations

import io
import math

import numpy as np

__all__ = [
    "FLOOR",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_SIDE",
    "gmm_image",
    "image_from_bytes",
    "mixture_in_box",
    "random_gmm",
    "tutorial_image",
    "with_floor",
]

MAX_IMAGE_BYTES = 20 * 2**20  # an upload larger than this is refused before decoding
MAX_IMAGE_PIXELS = 50_000_000  # decoded size cap (a decompression bomb is refused)
MAX_SIDE = 512  # larger images are downsampled (box average) to this many pixels per side


def tutorial_image(res: int = 64) -> np.ndarray:
    """Two isotropic Gaussians (sigma 0.1) at (0.3, 0.3) and (0.7, 0.7), sampled on
    ``linspace(0, 1, res)`` per axis: sdot's tutorial target, ``[res, res]``."""
    t = np.linspace(0.0, 1.0, res)
    x, y = np.meshgrid(t, t, indexing="ij")
    peak = lambda cx, cy: np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 0.1**2))  # noqa: E731
    return peak(0.3, 0.3) + peak(0.7, 0.7)


def gmm_image(
    means, covs, weights, shape=(256, 256), lo=(0.0, 0.0), hi=(1.0, 1.0), order: int = 6
) -> tuple[np.ndarray, float]:
    """Per-pixel mass of the mixture ``means [K, 2]``, ``covs [K, 2, 2]``, ``weights [K]``
    on a ``shape`` grid over ``lo``-``hi``, divided by the pixel area; and the mass outside
    the box. An ``order`` x ``order`` Gauss-Legendre rule per pixel integrates the
    density to relative error ~ (h / sigma)^(2 order) (h the pixel side)."""
    means, covs = np.asarray(means, np.float64), np.asarray(covs, np.float64)
    weights = np.asarray(weights, np.float64)
    weights = weights / weights.sum()
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    w, h = shape
    dx, dy = (hi - lo) / (w, h)
    nodes, gw = np.polynomial.legendre.leggauss(order)
    u, gw = (nodes + 1) / 2, gw / 2  # on [0, 1]
    xs = lo[0] + dx * (np.arange(w)[:, None] + u[None, :])  # [W, q]
    ys = lo[1] + dy * (np.arange(h)[:, None] + u[None, :])  # [H, q]
    values = np.zeros((w, h))
    for m, c, p in zip(means, covs, weights, strict=True):
        inv = np.linalg.inv(c)
        norm = p / (2 * math.pi * math.sqrt(np.linalg.det(c)))
        ex = xs[:, :, None, None] - m[0]  # [W, q, 1, 1]
        ey = ys[None, None, :, :] - m[1]  # [1, 1, H, q]
        q = inv[0, 0] * ex**2 + 2 * inv[0, 1] * ex * ey + inv[1, 1] * ey**2
        dens = norm * np.exp(-0.5 * q)  # [W, q, H, q]
        values += np.einsum("aibj,i,j->ab", dens, gw, gw)
    outside = max(0.0, 1.0 - float(values.sum() * dx * dy))
    return values, outside


def image_from_bytes(data: bytes, invert: bool = False) -> np.ndarray:
    """A grayscale density ``[W, H]`` (axis 0 = x, row 0 of the picture at the top)
    from PNG / JPEG bytes: ``1 - gray`` (darker = more mass), ``gray`` with ``invert``.
    Raises ValueError with a message for a file that is not an image, too large, or
    uniform white (no mass)."""
    from PIL import Image, UnidentifiedImageError

    if len(data) == 0:
        raise ValueError("the file is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"the file is {len(data) / 2**20:.0f} MiB, over the 20 MiB limit")
    try:
        with Image.open(io.BytesIO(data)) as img:
            wd, ht = img.size
            if wd * ht > MAX_IMAGE_PIXELS:
                raise ValueError(
                    f"the image is {wd} x {ht} pixels, over the {MAX_IMAGE_PIXELS:,} pixel limit"
                )
            if img.format not in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"):
                raise ValueError(f"unsupported image format {img.format}")
            img.draft("L", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced size
            gray = img.convert("L")
            if max(gray.size) > MAX_SIDE:
                scale = MAX_SIDE / max(gray.size)
                size = (max(1, round(gray.size[0] * scale)), max(1, round(gray.size[1] * scale)))
                gray = gray.resize(size, Image.Resampling.BOX)
            arr = np.asarray(gray, np.float64) / 255.0  # [rows, cols], row 0 = top
    except Image.DecompressionBombError:  # PIL's own check, on far larger images
        raise ValueError(f"the image is over the {MAX_IMAGE_PIXELS:,} pixel limit") from None
    except UnidentifiedImageError:
        raise ValueError("not a readable image: not a PNG or JPEG file, or a damaged one") from None
    except OSError:  # PIL's decoders: a truncated or corrupt file of a known format
        raise ValueError("not a readable image: the file is damaged or cut short") from None
    values = arr if invert else 1.0 - arr
    values = values[::-1].T.copy()  # [x, y] with y up
    if not np.any(values > 0):
        raise ValueError("the image has no mass (uniformly white; try invert)")
    return values


FLOOR = 1e-9  # mass given to empty pixels, relative to the mean pixel


def with_floor(values: np.ndarray, rel: float = FLOOR) -> np.ndarray:
    """``values [W, H] + rel * mean(values)``: empty pixels (a white background) get a tiny
    mass, so that every Laguerre cell holds some at a cold start and the damped Newton
    can begin, as on the tutorial's target (whose floor is 1e-12 of its peak); the added
    mass is ``rel`` of the total. Raw images with empty regions stop a cold start at once
    (``EMPTY_CELL``) whenever a Dirac's Voronoi cell lies there."""
    values = np.asarray(values, np.float64)
    return values + rel * float(values.mean())


def random_gmm(seed: int, k: int = 3) -> dict:
    """A random mixture well inside [0, 1]^2 (means in [0.2, 0.8]^2, standard deviations
    0.04 to 0.12, random orientation), as the ``target`` fields of a descent spec."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(0.2, 0.8, (k, 2))
    sd = rng.uniform(0.04, 0.12, (k, 2))
    angle = rng.uniform(0, np.pi, k)
    rot = np.stack([np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)], 1)
    rot = rot.reshape(k, 2, 2)
    covs = rot @ (sd[:, :, None] ** 2 * np.eye(2)) @ np.swapaxes(rot, 1, 2)
    weights = rng.dirichlet(np.full(k, 3.0))
    return {"means": means.tolist(), "covs": covs.tolist(), "weights": weights.tolist()}


def mixture_in_box(weights, means, covs, margin: float = 0.1) -> dict:
    """The mixture ``weights [K]``, ``means [K, 2]``, ``covs [K, 2, 2]`` mapped by one
    similarity ``x -> s (x - c) + 1/2`` so that every component's 3-sigma box lies in
    ``[margin, 1 - margin]^2`` (means ``s (m - c) + 1/2``, covariances ``s^2 C``), as
    the ``target`` fields of a descent spec (the shape is kept, only scaled)."""
    w = np.asarray(weights, np.float64)
    m = np.asarray(means, np.float64)
    c = np.asarray(covs, np.float64)
    if (
        w.ndim != 1
        or m.shape != (len(w), 2)
        or c.shape != (len(w), 2, 2)
        or not all(np.all(np.isfinite(a)) for a in (w, m, c))
        or w.sum() <= 0
    ):
        raise ValueError("the mixture must have finite weights [K], means [K, 2], covs [K, 2, 2]")
    reach = 3.0 * np.sqrt(np.maximum(np.diagonal(c, axis1=1, axis2=2), 0.0))  # [K, 2]
    lo, hi = np.min(m - reach, 0), np.max(m + reach, 0)
    span = float(np.max(hi - lo))
    if not span > 0:
        raise ValueError("the mixture has no extent (all components are points at one place)")
    s = (1.0 - 2.0 * margin) / span
    centre = (lo + hi) / 2.0
    return {
        "means": (s * (m - centre) + 0.5).tolist(),
        "covs": (s**2 * c).tolist(),
        "weights": (w / w.sum()).tolist(),
    }
