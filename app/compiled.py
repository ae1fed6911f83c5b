"""Jitted core entry points used by the app, compiled once per server process.

Module-level objects here are pure functions (immutable); sessions never store
state in this module. :mod:`gmmot.warmup` compiles them for the default shapes at server
start (``panel serve --setup app/warmup.py``) so the first page load is fast.
"""

from __future__ import annotations

import gc
import logging
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from gmmot_core import GMM, fit_em, kmeans_pp, log_prob, log_responsibilities
from gmmot_core.gmm_ot import interpolate, mean_map

__all__ = [
    "IndependentFit",
    "independent_fit",
    "map_images",
    "release_if_crowded",
    "transport_frame",
]

LOG = logging.getLogger("gmmot.compiled")
LOG.setLevel(logging.INFO)  # panel serve leaves the root logger at WARNING

#: Share of the kernel's memory-map budget past which compiled executables are dropped.
CROWDED = 0.5


def _count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def release_if_crowded(fraction: float | None = None, limit: int | None = None) -> bool:
    """Drop every compiled executable when this process's memory maps pass ``fraction``
    (default ``CROWDED``) of ``limit`` (default: the kernel's ``vm.max_map_count``, 65,530 here).

    Each XLA:CPU executable keeps its own maps (a semi-discrete solve: 1,000-2,500), so a
    server that compiles many shapes (new N, image sizes, K) would reach the limit and
    segfault in the next compile. Called before anything that may compile a new shape;
    the shapes still in use recompile on their next call (from the persistent cache when
    it is on). Returns whether it released; ``False`` where ``/proc`` is missing.
    """
    try:
        if limit is None:
            with open("/proc/sys/vm/max_map_count") as f:
                limit = int(f.read())
        used = _count_lines("/proc/self/maps")
    except OSError:
        return False
    if used < (CROWDED if fraction is None else fraction) * limit:
        return False
    jax.clear_caches()
    gc.collect()
    LOG.info(
        "compiled programs dropped: %d memory maps of %d, %d after",
        used,
        limit,
        _count_lines("/proc/self/maps"),
    )
    return True


class IndependentFit:
    """Host-side result of an independent EM fit: the mixture and point labels (numpy)."""

    def __init__(self, gmm: GMM, labels: np.ndarray, log_likelihood: float):
        self.gmm = GMM(*(np.asarray(x) for x in gmm))
        self.labels = labels
        self.log_likelihood = log_likelihood


@partial(jax.jit, static_argnames=("n_components", "steps"))
def _fit(key, points, point_weights, n_components: int, steps: int):
    init = kmeans_pp(key, points, n_components, point_weights)
    gmm = fit_em(init, points, point_weights, steps)
    log_resp = log_responsibilities(gmm, points)
    labels = jnp.argmax(log_resp, axis=-1)
    ll = jnp.sum(point_weights * log_prob(gmm, points)) / jnp.sum(point_weights)
    return gmm, labels, ll


def independent_fit(
    points: np.ndarray,
    n_components: int,
    steps: int = 30,
    seed: int = 0,
    point_weights: np.ndarray | None = None,
) -> IndependentFit:
    """kmeans++ then ``steps`` EM iterations on ``points [N, 2]`` (one jitted call)."""
    pts = jnp.asarray(points, jnp.float32)
    w = (
        jnp.ones(pts.shape[0], jnp.float32)
        if point_weights is None
        else jnp.asarray(point_weights, jnp.float32)
    )
    gmm, labels, ll = jax.device_get(_fit(jax.random.key(seed), pts, w, n_components, steps))
    return IndependentFit(gmm, np.asarray(labels), float(ll))


@jax.jit
def map_images(points, gmm0: GMM, gmm1: GMM, coupling):
    """``T_mean(points [n, 2])``: where the GMM-OT map sends each point."""
    return mean_map(points, gmm0, gmm1, coupling)


@jax.jit
def transport_frame(gmm0: GMM, gmm1: GMM, coupling, points, images, t, xs, ys):
    """One frame of the displacement interpolation at time ``t`` (traced): ``mu_t`` (a
    ``K0*K1`` mixture), its ``-log`` density on ``xs [W] x ys [H]`` and the points carried
    along the map, ``(1 - t) x + t T(x)``."""
    mu = interpolate(gmm0, gmm1, coupling, t)
    gx, gy = jnp.meshgrid(xs, ys)
    nld = -log_prob(mu, jnp.stack([gx.ravel(), gy.ravel()], -1)).reshape(gx.shape)
    return mu, nld, (1.0 - t) * points + t * images
