"""Fitting a Gaussian mixture to points by the exact semi-discrete W2^2, as an init / step
/ run solver (the last section of sdot's tutorial, "Fitting GMM Parameters Directly").

Each step descends ``W2^2(sum_i nu_i delta_{x_i}, GMM restricted to a box)``, plus the
mixture's mass outside the box (charged at the squared box side), in the mixture's
unconstrained parameters (:class:`~gmmot_core.parametrization.RawGMM`) by Adam:
the mixture is rastered per pixel in jnp (:func:`~gmmot_core.semidiscrete.gmm_values`),
the Laguerre weights are solved by Newton from the last step's weights, and the
gradient flows back through the raster (the density cotangent of
:func:`~gmmot_core.semidiscrete.w2_solve`).

The fit runs in unit coordinates: the points are mapped by one similarity onto the box
``[0, 1]^2`` with a margin (:func:`fit_data`), so that any finite data range works and
the learning rate is a share of the box; :func:`mixture` and :func:`w2_user` report in
the user's coordinates. ``config`` is static; the learning rate is traced; components of
weight 0 (``weight_params`` at -inf) are inert, so a mixture padded to the largest K
(:func:`pad_components`) gives one compiled fit for every K. Failures are
values: a step whose solve failed (warm) is retried cold at the next step, one whose
cold solve failed halts the run, one that produced non-finite parameters is rolled back.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gmmot_core.buckets import pad_diracs
from gmmot_core.mixture import GMM, kmeans_pp, log_prob
from gmmot_core.parametrization import RawGMM, floor_covariances, from_raw, to_raw
from gmmot_core.semidiscrete import status as sd_status
from gmmot_core.semidiscrete.candidates import Grid
from gmmot_core.semidiscrete.cells import Cells, solved_cells
from gmmot_core.semidiscrete.density import density_from_values, gmm_values
from gmmot_core.semidiscrete.descent import w2_solve
from gmmot_core.semidiscrete.sizes import Sizes, default_sizes, grow_sizes

__all__ = [
    "FitConfig",
    "FitData",
    "FitState",
    "Frame",
    "Trace",
    "advance",
    "describe_status",
    "fit_data",
    "fit_sizes",
    "init",
    "initial_mixture",
    "mixture",
    "pad_components",
    "pad_fit_data",
    "run",
    "step",
    "target_values",
    "to_unit",
    "to_user",
    "user_points",
    "w2_user",
]

# fit bits, above the semi-discrete solver's (gmmot_core.semidiscrete.status)
ROLLED_BACK = 1 << 9  # the update gave non-finite parameters: the last good mixture is kept
RETRIED_COLD = 1 << 10  # the warm solve failed; the step was retried from a cold start
HALTED = 1 << 11  # a cold solve failed: the run stops at the last good mixture

MESSAGES = {
    ROLLED_BACK: "the update gave non-finite parameters; the last good mixture is kept",
    RETRIED_COLD: "a warm-started solve failed and was redone from a cold start",
    HALTED: "the W2 solve failed from a cold start: the fit stopped at the last good mixture",
}

# mass given to every pixel, relative to the mean pixel, so that no data point's cell
# lies over exactly zero density (the mixture underflows ~38 sigmas out)
FLOOR = 1e-9


def describe_status(status: int) -> str:
    """The messages of the bits set in ``status`` ('' when none), host side."""
    status = int(status)
    parts = [msg for bit, msg in MESSAGES.items() if status & bit]
    solver = sd_status.describe(status & (ROLLED_BACK - 1))  # the solver's bits
    return "; ".join(([solver] if solver else []) + parts)


class FitData(NamedTuple):
    """The observed points in unit coordinates: ``points [N, 2]`` in the box ``[0, 1]^2``,
    masses ``nu [N]`` (sum 1); ``centre [2]`` and ``scale`` map them back:
    ``x_user = centre + scale (x - 1/2)``."""

    points: jax.Array
    nu: jax.Array
    centre: jax.Array
    scale: jax.Array


def fit_data(points, weights=None, margin: float = 0.2, dtype=jnp.float64) -> FitData:
    """Host side: ``points [N, 2]`` (and ``weights [N] >= 0``, default uniform) as a
    :class:`FitData`. Rows that are not finite or have weight 0 are dropped, exact
    duplicates are merged (their weights summed: two Diracs at one place have no
    Laguerre cells), and the data's bounding square, widened by ``margin`` of its side
    on every edge, becomes the box. Raises ``ValueError`` on data that cannot be fit."""
    p = np.asarray(points, np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points must have shape [N, 2], got {p.shape}")
    w = np.ones(len(p)) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (len(p),):
        raise ValueError(f"weights must have shape [{len(p)}], got {w.shape}")
    keep = np.all(np.isfinite(p), 1) & np.isfinite(w) & (w > 0)
    if np.any(np.isfinite(w) & (w < 0)):
        raise ValueError("weights must be >= 0")
    p, w = p[keep], w[keep]
    p, inverse = np.unique(p, axis=0, return_inverse=True)
    w = np.bincount(inverse.ravel(), weights=w, minlength=len(p))
    if len(p) < 2:
        raise ValueError("at least two distinct points with positive weight are needed")
    lo, hi = p.min(0), p.max(0)
    side = float(np.max(hi - lo))
    if not side > 0:
        raise ValueError("the points span no area")
    scale = side * (1.0 + 2.0 * margin)
    centre = (lo + hi) / 2.0
    unit = (p - centre) / scale + 0.5
    return FitData(
        jnp.asarray(unit, dtype),
        jnp.asarray(w / w.sum(), dtype),
        jnp.asarray(centre, dtype),
        jnp.asarray(scale, dtype),
    )


class FitConfig(NamedTuple):
    """Static settings: the raster ``shape (W, H)`` of the box, the Gauss-Legendre
    ``order`` per pixel, the solver's ``sizes`` (default: :func:`fit_sizes`),
    ``trace_length``."""

    shape: tuple[int, int] = (64, 64)
    order: int = 4
    sizes: Sizes | None = None
    trace_length: int = 512

    @property
    def min_variance(self) -> float:
        """The floor of every covariance's eigenvalues (unit coordinates): half a pixel,
        squared, the finest Gaussian the raster shows. Below it the rastered density
        is a few spiky pixels and the mass solve stalls (the outlier clump at K = 3
        collapsed a component to a fiftieth of a pixel by step 69)."""
        return (0.5 / max(self.shape)) ** 2

    def with_sizes(self, points, rows: int | None = None) -> FitConfig:
        """This config, with :func:`fit_sizes` of ``points [N, 2]`` if it has no sizes."""
        if self.sizes is not None:
            return self
        return self._replace(sizes=fit_sizes(points, self.shape, rows))


def pad_fit_data(data: FitData, rows: int) -> FitData:
    """``data`` padded to ``rows`` points with zero-mass copies of its first point: inert
    Diracs of the semi-discrete solve (no cell), weight 0 in every EM and likelihood sum,
    never a kmeans++ seed (drawn with probability ``nu * D^2``)."""
    y, nu = pad_diracs(np.asarray(data.points), np.asarray(data.nu), rows)
    dt = data.points.dtype
    return data._replace(points=jnp.asarray(y, dt), nu=jnp.asarray(nu, dt))


def fit_sizes(points, shape: tuple[int, int], rows: int | None = None) -> Sizes:
    """Host side: solver sizes for the fixed Diracs ``points [N, 2]`` (so that the
    first steps do not recompile): :func:`default_sizes` with twice the vertices, ring
    candidates and pieces, and with a row capacity of the
    candidate grid that holds the fullest row of this cloud (1.5x, a multiple of 8;
    clustered data crowd a few bins) and a quarter of the cells as rescue (cells over
    the sparse parts of a cloud reach past their block of bins). ``rows >= N``: the
    padded row count (:func:`pad_fit_data`); the capacity is then rounded up to a
    power of two, so that clouds of one bucket share few programs."""
    p = np.asarray(points, np.float64)
    n = len(p) if rows is None else rows
    sizes = default_sizes(n, shape)
    g, cap, r, rescue = sizes.grid
    if g == 0:
        return sizes
    h = np.maximum((p.max(0) - p.min(0)) / g, 1e-12)
    cell = np.clip(np.floor((p - p.min(0)) / h).astype(int), 0, g - 1)
    counts = np.zeros((g, g + 2 * r), int)
    np.add.at(counts, (cell[:, 0], cell[:, 1] + r), 1)
    band = np.lib.stride_tricks.sliding_window_view(counts, 2 * r + 1, axis=1).sum(-1)
    cap = max(cap, int(8 * np.ceil(1.5 * band.max() / 8)))
    if n > len(p):
        cap = int(2 ** np.ceil(np.log2(cap)))
    # 2x the vertices, ring and pieces: cells of clustered points on a mixture's density
    # outgrow 16 vertices (three blobs, N = 2000: both grew in the first frame, a second
    # 45 s compile of it)
    return sizes._replace(
        max_vertices=2 * sizes.max_vertices,
        pieces=2 * sizes.pieces,
        grid=Grid(g, cap, r, max(rescue, n // 4)),
        ring=2 * sizes.ring,
    )


class Trace(NamedTuple):
    """A ring of the last ``T`` steps (step ``i`` at ``i % T``), each at the mixture
    before that step's update (NaN = not yet):
    ``w2`` (unit coordinates), ``log_likelihood`` (mean over the points, weighted by
    ``nu``, unit coordinates), ``outside`` (the mixture's mass outside the box; the
    objective is ``w2 + outside``)."""

    w2: jax.Array
    log_likelihood: jax.Array
    outside: jax.Array


class FitState(NamedTuple):
    """``raw``: the mixture (unit coordinates, unconstrained); ``adam``: Adam's moments;
    ``weights [N]``, ``labels [N, V]``: the last Laguerre weights and cell labels (the
    warm start); ``cold``: solve the next step from a cold start; ``w2``: the last
    W2^2 (unit coordinates); ``step``; ``trace``; ``status`` (bits of the last step);
    ``learning_rate`` (traced)."""

    raw: RawGMM
    adam: optax.OptState
    weights: jax.Array
    labels: jax.Array
    cold: jax.Array
    w2: jax.Array
    step: jax.Array
    trace: Trace
    status: jax.Array
    learning_rate: jax.Array


_ADAM = optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8)


def to_unit(gmm: GMM, data: FitData) -> GMM:
    """A mixture of the user's coordinates in the fit's unit coordinates."""
    s = data.scale
    return GMM(gmm.weights, (gmm.means - data.centre) / s + 0.5, gmm.covs / s**2)


def to_user(gmm: GMM, data: FitData) -> GMM:
    """A mixture of the fit's unit coordinates in the user's (the inverse of :func:`to_unit`)."""
    s = data.scale
    return GMM(gmm.weights, user_points(gmm.means, data), gmm.covs * s**2)


def user_points(x, data: FitData):
    """Points ``[..., 2]`` of the unit coordinates in the user's."""
    return data.centre + data.scale * (x - 0.5)


def mixture(state: FitState, data: FitData) -> GMM:
    """The current mixture in the user's coordinates."""
    return to_user(from_raw(state.raw), data)


def w2_user(w2_unit, data: FitData):
    """A W2^2 of the unit coordinates in the user's (times ``scale^2``)."""
    return w2_unit * data.scale**2


def pad_components(gmm: GMM, k: int) -> GMM:
    """``gmm`` (K components) with ``k - K`` inert components in front: weight 0 (their
    ``weight_params`` are -inf, so their gradients are 0 and Adam leaves them there),
    the first component's mean and covariance (finite everywhere). The real components
    keep their order and the last stays the reference of the weights' softmax, so every
    step is the unpadded one; the fit is the last K rows of :func:`mixture`."""
    pad = k - gmm.weights.shape[0]
    if pad < 0:
        raise ValueError(f"{gmm.weights.shape[0]} components do not fit in {k}")
    return GMM(
        jnp.concatenate([jnp.zeros((pad,), gmm.weights.dtype), gmm.weights]),
        jnp.concatenate([jnp.repeat(gmm.means[:1], pad, 0), gmm.means]),
        jnp.concatenate([jnp.repeat(gmm.covs[:1], pad, 0), gmm.covs]),
    )


def initial_mixture(key: jax.Array, data: FitData, k: int, ridge: float = 1e-4) -> GMM:
    """A start in the user's coordinates: kmeans++ seeds and one hard assignment on the
    points (weighted by ``nu``), covariances widened by ``ridge`` (unit coordinates) so
    that a component on one point is still a Gaussian."""
    g = kmeans_pp(key, data.points, k, data.nu)
    eye = jnp.eye(2, dtype=g.covs.dtype)
    weights = jnp.maximum(g.weights, 1e-3)
    return to_user(GMM(weights / jnp.sum(weights), g.means, g.covs + ridge * eye), data)


def target_values(raw: RawGMM, config: FitConfig) -> tuple[jax.Array, jax.Array]:
    """The mixture's pixel densities ``[W, H]`` on the unit box, floored (:data:`FLOOR`),
    and the share of its mass outside the box."""
    g = from_raw(raw)
    v = gmm_values(g.weights, g.means, g.covs, config.shape, order=config.order)
    outside = 1.0 - jnp.mean(v)  # the box has area 1
    return v + FLOOR * jnp.mean(v), outside


def _objective(raw: RawGMM, data: FitData, config: FitConfig, w0, hint):
    # W2^2 to the mixture restricted to the box, plus the mass it puts outside charged
    # at the box side squared: without it a component can sit off the box and shape the
    # density inside with its tail
    values, outside = target_values(raw, config)
    density = density_from_values(values)
    value, *aux = w2_solve(data.points, density, data.nu, w0, hint, config.sizes)
    return value + outside, (value, outside, *aux)


def init(gmm: GMM, data: FitData, config: FitConfig, learning_rate=1e-2) -> FitState:
    """The state at ``gmm`` (user coordinates, weights > 0, SPD covariances), its
    covariances floored at :attr:`FitConfig.min_variance`; the first step solves cold.
    ``config.sizes`` must be set (:meth:`FitConfig.with_sizes`)."""
    dt = data.points.dtype
    raw = jax.tree.map(lambda a: jnp.asarray(a, dt), to_raw(to_unit(gmm, data)))
    raw = floor_covariances(raw, config.min_variance)
    nan = jnp.full((config.trace_length,), jnp.nan, dt)
    return FitState(
        raw=raw,
        adam=_ADAM.init(raw),
        weights=jnp.zeros(data.points.shape[0], dt),
        labels=jnp.full((data.points.shape[0], config.sizes.max_vertices), -1, jnp.int32),
        cold=jnp.asarray(True),
        w2=jnp.asarray(jnp.nan, dt),
        step=jnp.asarray(0, jnp.int32),
        trace=Trace(nan, nan, nan),
        status=jnp.asarray(0, jnp.int32),
        learning_rate=jnp.asarray(learning_rate, dt),
    )


def _finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree)]))


def _finite_raw(raw: RawGMM) -> jax.Array:
    """Every parameter finite, but for the -inf weight parameters of inert components."""
    w = raw.weight_params
    return _finite((raw.loc, raw.scale_params)) & jnp.all(jnp.isfinite(w) | (w == -jnp.inf))


def step(state: FitState, data: FitData, config: FitConfig) -> FitState:
    """One Adam step on W2^2 (never raises; ``config.sizes`` must be set, see
    :meth:`FitConfig.with_sizes`). A halted state is returned unchanged."""
    return jax.lax.cond(
        (state.status & HALTED) != 0, lambda s: s, lambda s: _step(s, data, config), state
    )


def _step(state: FitState, data: FitData, config: FitConfig) -> FitState:
    grad_fn = jax.value_and_grad(_objective, has_aux=True)
    # the points lie inside the box (fit_data's margin): a cold start is Voronoi, w = 0,
    # with no labels (no hint)
    w0 = jnp.where(state.cold, 0.0, state.weights)
    hint = jnp.where(state.cold, -1, state.labels)
    (objective, aux), grads = grad_fn(state.raw, data, config, w0, hint)
    value, outside, solve_bits, weights, labels = aux
    failed = (solve_bits & sd_status.STOP_BITS) != 0
    updates, adam = _ADAM.update(grads, state.adam, state.raw)
    raw = jax.tree.map(lambda p, u: p - state.learning_rate * u, state.raw, updates)
    raw = floor_covariances(raw, config.min_variance)
    finite = _finite_raw(raw) & _finite(adam) & jnp.isfinite(objective)
    take = ~failed & finite

    def keep(new, old):
        return jax.tree.map(lambda a, b: jnp.where(take, a, b), new, old)

    g = from_raw(state.raw)
    loglik = jnp.sum(data.nu * log_prob(g, data.points))
    i = state.step % config.trace_length
    recorded = ~failed  # a failed solve has no value to trace
    trace = Trace(
        *(
            old.at[i].set(jnp.where(recorded, new, old[i]))
            for old, new in zip(state.trace, (value, loglik, outside), strict=True)
        )
    )
    status = (
        solve_bits
        | jnp.where(failed & ~state.cold, RETRIED_COLD, 0)
        | jnp.where(failed & state.cold, HALTED, 0)
        | jnp.where(~failed & ~finite, ROLLED_BACK, 0)
    ).astype(jnp.int32)
    return FitState(
        raw=keep(raw, state.raw),
        adam=keep(adam, state.adam),
        weights=jnp.where(failed, state.weights, weights),
        labels=jnp.where(failed, state.labels, labels),
        cold=failed,
        w2=jnp.where(failed, state.w2, value),
        step=state.step + jnp.where(failed, 0, 1).astype(jnp.int32),
        trace=trace,
        status=status,
        learning_rate=state.learning_rate,
    )


def run(state: FitState, data: FitData, config: FitConfig, steps) -> FitState:
    """``steps`` (a traced int: any count reuses one executable) steps of :func:`step`
    (jit with ``config`` static)."""
    return jax.lax.fori_loop(0, steps, lambda _, s: step(s, data, config), state)


class Frame(NamedTuple):
    """What a view draws after a run: the Laguerre cells of the points at the state's
    weights (:class:`~gmmot_core.semidiscrete.cells.Cells`, unit coordinates) and the
    mixture's pixel values ``[W, H]`` on the unit box."""

    cells: Cells
    values: jax.Array


def _frame(state: FitState, data: FitData, config: FitConfig, steps) -> tuple[FitState, Frame]:
    state = run(state, data, config, steps)
    one = jnp.ones((2,), data.points.dtype)
    active = data.nu > 0  # zero-mass points (padding) are inert: no cell
    cells = solved_cells(
        data.points, state.weights, 0 * one, one, config.sizes, state.labels, active
    )
    return state, Frame(cells, target_values(state.raw, config)[0])


_run_frame = jax.jit(_frame, static_argnames=("config",))


def advance(
    state: FitState, data: FitData, config: FitConfig, steps: int
) -> tuple[FitState, FitConfig, Frame]:
    """Host side: ``steps`` steps of :func:`run` and the :class:`Frame` of the result in
    one jitted call, repeated from ``state`` with larger sizes when a solve ran out of
    one (a recompile). Returns the new state, the config it used and the frame."""
    config = config.with_sizes(data.points)
    n = data.points.shape[0]
    while True:
        new, frame = _run_frame(state, data, config, jnp.int32(steps))
        bits = int(new.status)
        bigger = grow_sizes(config.sizes, bits, n) if bits & sd_status.SIZE_BITS else None
        if bigger is None:
            return new, config, frame
        config = config._replace(sizes=bigger)
        v = bigger.max_vertices
        state = state._replace(
            status=jnp.zeros_like(state.status),
            cold=jnp.asarray(True),
            labels=jnp.full((n, v), -1, jnp.int32),
        )
