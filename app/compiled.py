"""Jitted core entry points used by the app, compiled once per server process.

Module-level objects here are pure functions (immutable); sessions never store
state in this module. ``warm_up`` compiles them for the default shapes at server
start (``panel serve --setup app/warmup.py``) so the first page load is fast.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from gmmot_core import GMM, fit_em, kmeans_pp, log_prob, log_responsibilities
from gmmot_core import coupled_em as ce
from gmmot_core.mixture import log_joint_features

__all__ = ["IndependentFit", "frame", "independent_fit", "initial_mixtures", "warm_up"]

LABEL_LIMIT = 20_000  # above this many points per cloud, points are drawn without labels


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


@partial(jax.jit, static_argnames=("n_components", "steps"))
def _pooled_init(key, pooled, weights, n_components: int, steps: int):
    scale = jnp.sqrt(jnp.mean(jnp.var(pooled, axis=0)))
    ridge = 1e-6 * jnp.maximum(scale, 1e-12) ** 2
    return fit_em(kmeans_pp(key, pooled, n_components, weights), pooled, weights, steps, ridge)


def initial_mixtures(
    points0, points1, k: int, seed: int = 0, weights0=None, weights1=None, steps: int = 20
) -> tuple[GMM, GMM]:
    """The notebook's start: kmeans++ + ``steps`` EM on the pooled clouds, for both sides.

    A tiny ridge (1e-6 x the pooled variance) keeps covariances SPD on degenerate clouds.
    Non-finite rows are left out.
    """
    p0, p1 = np.asarray(points0, np.float32), np.asarray(points1, np.float32)
    w0 = np.ones(len(p0), np.float32) if weights0 is None else np.asarray(weights0, np.float32)
    w1 = np.ones(len(p1), np.float32) if weights1 is None else np.asarray(weights1, np.float32)
    pooled = np.concatenate([p0, p1])
    w = np.concatenate([w0, w1])
    ok = np.all(np.isfinite(pooled), axis=1) & np.isfinite(w) & (w >= 0)
    g = _pooled_init(jax.random.key(seed), jnp.asarray(pooled[ok]), jnp.asarray(w[ok]), k, steps)
    return g, g


def _labels(gmm, feats):
    return jnp.argmax(log_joint_features(gmm, feats), axis=-1).astype(jnp.int8)


@partial(jax.jit, static_argnames=("config", "advance", "with_labels"))
def _frame(state, data, config, advance: bool, with_labels: bool):
    if advance:
        state = ce.run(state, data, config)
    g0, g1 = ce.mixtures(state)
    rep = ce.coupling_report(state, config)
    view = {
        "gmm0": g0,
        "gmm1": g1,
        "report": rep,
        "traces": state.traces,
        "iteration": state.iteration,
        "status": state.status,
        "first_bad": state.first_bad,
    }
    if with_labels:
        view["labels0"] = _labels(g0, data.feats0)
        view["labels1"] = _labels(g1, data.feats1)
    return state, view


def frame(state, data, config, advance: bool = True):
    """One animation frame: ``run(state, em_steps)`` + the view, then one device-to-host copy.

    Returns ``(new device state, host view dict)``: mixtures, the coupling report, traces,
    iteration, status messages, point labels (clouds up to ``LABEL_LIMIT`` points).
    """
    n = max(data.feats0.phi.shape[0], data.feats1.phi.shape[0])
    state, view = _frame(state, data, config, advance, n <= LABEL_LIMIT)
    view = jax.device_get(view)
    status = int(view["status"])
    view["messages"] = ce.describe_status(status)
    view["rolled_back"] = bool(status & ce.ROLLED_BACK)
    return state, view


def warm_up() -> None:
    """Compile the jitted functions for the default dataset's shapes."""
    from app.models import DataSource
    from app.runner import CoupledEMRunner

    src = DataSource()
    clouds = src.clouds()
    for pts in clouds:
        independent_fit(pts, 3)
    runner = CoupledEMRunner(*clouds)
    runner.step()
