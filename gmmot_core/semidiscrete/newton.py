"""Damped Newton (Kitagawa-Merigot-Thibert) for the Laguerre weights.

Solves ``m_i(w) = nu_i`` (the mass of every cell) from a warm or a cold start; cold
starts go through the blurred stages of :mod:`~gmmot_core.semidiscrete.density`.
Static sizes come from the host: under ``jit`` a size that runs out is flagged, and
:func:`solve_weights` grows it and repeats the solve.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from gmmot_core.gaussians import check_2d
from gmmot_core.semidiscrete.cells import Cells, near_cells, power_cells
from gmmot_core.semidiscrete.density import ImageDensity, cold_weights, last_stage, stage_density
from gmmot_core.semidiscrete.hessian import cg, jacobi, laplacian
from gmmot_core.semidiscrete.integrals import CellIntegrals, cell_integrals
from gmmot_core.semidiscrete.sizes import Sizes, default_sizes, grow_sizes
from gmmot_core.semidiscrete.status import (
    EMPTY_CELL,
    NOT_CONVERGED,
    RING_MISS,
    SIZE_BITS,
    STACKED,
    UNCERTIFIED,
)


class SolveResult(NamedTuple):
    """``weights [N]``, the cells' ``integrals`` at those weights, Newton ``iterations``,
    diagrams ``evaluations``, ``error`` = max |m_i - nu_i| and ``status`` (status bits
    | NOT_CONVERGED | EMPTY_CELL); ``sizes`` used (set by :func:`solve_weights`)."""

    weights: jax.Array
    integrals: CellIntegrals
    iterations: jax.Array
    evaluations: jax.Array
    error: jax.Array
    status: jax.Array
    sizes: Sizes | None = None


SIZE_PATIENCE = 6  # halvings of a trial step that runs out of a size before giving up

# a cold start whose smallest cell holds this share of min(nu) skips the continuation
COLD_ENOUGH = 0.1

# line search: a step starts from LS_GROWTH x the last accepted one (at most 1), and from
# STAGE_STEP after a continuation stage changed the density under the weights (disk at
# N = 4000: 77 diagrams from 1/8, 67 from 1/2; a full step was no better)
LS_GROWTH = 2.0

# Newton on log m - log nu until every cell is within this factor of its target mass
LOG_UNTIL = 0.5

# KMT's mass floor is relaxed by this factor in the log phase, whose residual already
# grows without bound as a cell empties
LOG_FLOOR = 0.01

STAGE_STEP = 0.5

# Newton iterations of a solve, all continuation stages together: a cold solve on a sharp
# mixture's raster (the W2 fit's outlier clump at K = 2..4) takes 90-160
MAX_ITERATIONS = 300

# the rounding floor: in the last stage, a trial step this short whose masses are no
# better, at an error within FLOOR_FACTOR x tol, ends the solve (converged at the floor).
# The masses of a sharp density are sums of large terms: a sharp mixture on 48^2
# (outlier clump, K = 3) stops improving at 1.14e-8 against tol 1e-8 in float64, and
# the line search then halved to 1e-17 for the rest of the iterations.
FLOOR_STEP = 2.0**-10
FLOOR_FACTOR = 10.0

INIT, STAGE, TRIAL = 0, 1, 2  # what the Newton loop evaluates next (see newton_solve)


def _evaluate(y, w, density: ImageDensity, sizes: Sizes, labels, near, fallback, active):
    """The one cell builder of a solve: cells of ``(y, w)`` and their integrals.

    All pairs when ``sizes.grid`` says so (small N: no candidate search is cheaper),
    clipped first by the neighbours in ``labels`` (the last diagram's: most cells are
    then final after that one pass; a ring and cell reuse cost more at this size).
    Otherwise, with ``near`` (traced), the ring candidates of the nearby diagram
    ``labels [N, V]``; where they miss a cut and ``fallback`` (traced) is set, or
    without ``near``, the candidate grid. A miss left is flagged RING_MISS. Inert
    Diracs (``active [N]`` False) own no cell and cut none."""
    lo, hi, v = density.lo, density.hi, sizes.max_vertices
    if sizes.grid.bins == 0:
        cells = power_cells(y, w, lo, hi, v, sizes.grid, labels, active=active)
    else:
        n = y.shape[0]
        missed = Cells(
            jnp.zeros((n, v, 2), y.dtype),
            jnp.full((n, v), -1, jnp.int32),
            jnp.zeros((n,), jnp.int32),
            jnp.asarray(RING_MISS, jnp.int32),
        )
        cells = jax.lax.cond(
            near,
            lambda: near_cells(y, w, lo, hi, sizes, labels, fallback=False, active=active),
            lambda: missed,
        )
        grid = (cells.status & RING_MISS != 0) & (fallback | ~near)
        cells = jax.lax.cond(
            grid,
            lambda: power_cells(y, w, lo, hi, v, sizes.grid, labels, active=active),
            lambda: cells,
        )
    return cell_integrals(cells, y, density, sizes.pieces)


class NewtonProblem(NamedTuple):
    """What one solve is about: Diracs ``y [N, 2]``, target masses ``nu [N]``, the
    ``density`` and the tolerance ``tol`` on max |m - nu|. A Dirac with ``nu_i = 0`` is
    inert: it owns no cell, cuts no other and keeps its weight (padding to a static
    size leaves the solve of the others unchanged)."""

    y: jax.Array
    nu: jax.Array
    density: ImageDensity
    tol: jax.Array


class NewtonConfig(NamedTuple):
    """Static settings (hashable): ``sizes``, ``max_iterations``, ``cg_iterations``."""

    sizes: Sizes
    max_iterations: int = MAX_ITERATIONS
    cg_iterations: int = 4000


class NewtonState(NamedTuple):
    """The solver's state between evaluations: accepted ``w``, ``ints``; direction ``d``,
    trial step ``t``, last accepted step ``t_prev``, halvings ``tries``; counters;
    continuation stage ``k``; ``phase`` (INIT / STAGE / TRIAL: what the next evaluation
    is); ``warm``: still on the given weights; ``eps0``, ``e0``: KMT's floor and
    |m - nu|; ``floor``: stopped at the masses' rounding floor (see FLOOR_STEP);
    ``dens``: stage ``k``'s density."""

    w: jax.Array
    ints: CellIntegrals
    d: jax.Array
    t: jax.Array
    t_prev: jax.Array
    tries: jax.Array
    it: jax.Array
    evals: jax.Array
    status: jax.Array
    k: jax.Array
    phase: jax.Array
    warm: jax.Array
    near: jax.Array
    eps0: jax.Array
    e0: jax.Array
    logres: jax.Array
    empty: jax.Array
    stalled: jax.Array
    done: jax.Array
    floor: jax.Array
    dens: ImageDensity


def _active(nu):
    """``[N]`` the Diracs that are not inert, their count and their smallest mass."""
    on = nu > 0
    return on, jnp.sum(on), jnp.min(jnp.where(on, nu, jnp.inf))


def _error(problem: NewtonProblem, ints: CellIntegrals) -> jax.Array:
    return jnp.max(jnp.abs(ints.mass - problem.nu))


def _residual(problem: NewtonProblem, ints: CellIntegrals, logres) -> jax.Array:
    """``log m - log nu`` while far (cells near empty are grown by factors, not by
    ``nu - m``, which overshoots their neighbours), then ``m - nu``."""
    tiny = jnp.finfo(problem.y.dtype).tiny
    m = ints.mass
    log_nu = jnp.log(jnp.maximum(problem.nu, tiny))
    return jnp.where(logres, jnp.log(jnp.maximum(m, tiny)) - log_nu, m - problem.nu)


def init(problem: NewtonProblem, w0, config: NewtonConfig, hint=None) -> NewtonState:
    """The state before the first evaluation, at ``w0`` (cells from the nearby diagram
    ``hint [N, V]``, if any: a hint of all -1 labels is no hint, so warm and cold
    starts share one executable)."""
    y, density, sizes = problem.y, problem.density, config.sizes
    dt, n = y.dtype, y.shape[0]
    labels0 = (
        jnp.full((n, sizes.max_vertices), -1, jnp.int32) if hint is None else hint.astype(jnp.int32)
    )
    with_hint = jnp.asarray(False) if hint is None else jnp.any(hint >= 0)
    zero = jnp.asarray(0)
    ints0 = CellIntegrals(
        jnp.zeros((n,), dt),
        jnp.zeros((n, 2), dt),
        jnp.zeros((n,), dt),
        jnp.zeros((n, sizes.max_vertices), dt),
        labels0,
        jnp.asarray(0, jnp.int32),
    )
    return NewtonState(
        w0,
        ints0,
        jnp.zeros_like(w0),
        jnp.asarray(1.0, dt),
        jnp.asarray(1.0, dt),
        zero,
        zero,
        zero,
        jnp.asarray(0, jnp.int32),
        jnp.asarray(last_stage(density)),
        jnp.asarray(INIT),
        with_hint,
        with_hint,
        jnp.asarray(0.0, dt),
        jnp.asarray(0.0, dt),
        jnp.asarray(False),
        jnp.asarray(False),
        jnp.asarray(False),
        jnp.asarray(False),
        jnp.asarray(False),
        density,
    )


def step(s: NewtonState, problem: NewtonProblem, config: NewtonConfig) -> NewtonState:
    """One evaluation of the diagram and what follows from it: a start (INIT), a stage's
    first evaluation (STAGE) or a trial step (TRIAL, KMT's acceptance test); then the
    next stage, the end, or a new Newton direction."""
    y, nu, density, tol = problem
    sizes = config.sizes
    dt = y.dtype
    last = last_stage(density)
    cg_tol = jnp.asarray(1e-10 if dt == jnp.float64 else 1e-5, dt)
    tiny = jnp.finfo(dt).tiny
    active, n_active, min_nu = _active(nu)
    log_ok = min_nu > 0

    def residual(ints, logres):
        return _residual(problem, ints, logres)

    x = jnp.where(s.phase == TRIAL, s.w + s.t * s.d, s.w)
    ints_x = _evaluate(y, x, s.dens, sizes, s.ints.labels, s.near, s.phase != TRIAL, active)
    min_m = jnp.min(jnp.where(active, ints_x.mass, jnp.inf))
    evals = s.evals + 1

    # INIT: the start. A failed warm start is replaced by Voronoi weights
    at_init = s.phase == INIT
    redo = at_init & s.warm & ((min_m <= 0) | ((ints_x.status & UNCERTIFIED) != 0))
    start = at_init & ~redo
    eps_start = 0.5 * jnp.minimum(min_nu, min_m)
    start_bad = ((ints_x.status & (SIZE_BITS | STACKED)) != 0) | (eps_start <= 0)
    k_start = jnp.where(s.warm | (min_m >= COLD_ENOUGH * min_nu), last, 0)

    # TRIAL: KMT's acceptance; a trial whose ring candidates missed a cut is too far
    # (a smaller step's new neighbours are all in the ring). A trial that ran out of a
    # size is halved too; only a run of them ends the solve for the host to grow it
    trial = s.phase == TRIAL
    inexact = (ints_x.status & SIZE_BITS) != 0
    rejected = (
        (min_m < jnp.where(s.logres, LOG_FLOOR, 1.0) * s.eps0)
        | ((ints_x.status & RING_MISS) != 0)
        | ~(jnp.linalg.norm(residual(ints_x, s.logres)) <= (1.0 - s.t / 2.0) * s.e0)
    )
    ok = trial & ~inexact & ~rejected
    give_up = trial & ~ok & ((inexact & (s.tries >= SIZE_PATIENCE)) | (s.tries >= 60))

    # what is accepted: a start, a stage's first evaluation or a trial
    stage_start = start | (s.phase == STAGE)
    accepted = stage_start | ok
    ints = jax.tree.map(lambda a, b: jnp.where(accepted, a, b), ints_x, s.ints)
    ints = ints._replace(labels=jnp.where(redo, ints_x.labels, ints.labels))
    w = jnp.where(redo, cold_weights(y, density), jnp.where(ok, x, s.w))
    k = jnp.where(start, k_start, s.k)
    eps0 = jnp.where(stage_start, eps_start, s.eps0)  # KMT's floor, per stage
    status = s.status | jnp.where(accepted, ints_x.status, 0)
    status = status | jnp.where(give_up, ints_x.status & SIZE_BITS, 0)
    stalled = (start & start_bad) | give_up
    it = s.it + (trial & (ok | give_up)).astype(s.it.dtype)

    # after an acceptance: next stage, done, or a Newton direction
    tol_k = jnp.where(k < last, jnp.maximum(tol, 0.3 * min_nu), tol)
    err = _error(problem, ints)
    converged = accepted & (err <= tol_k)
    next_stage = converged & (k < last)
    at_floor = trial & (s.t <= FLOOR_STEP) & (k == last) & (err <= FLOOR_FACTOR * tol)
    finished = (
        (converged & (k == last))
        | (accepted & ~converged & (it >= config.max_iterations))
        | at_floor
    )
    needs_stage = start & (k_start < last)  # a cold start's first stage is a blur
    go = accepted & ~converged & ~finished & ~stalled & ~needs_stage
    near_nu = jnp.max(jnp.abs(ints.mass - nu) / jnp.where(nu > 0, nu, 1.0)) <= LOG_UNTIL
    logres = log_ok & jnp.where(stage_start, ~near_nu, s.logres & ~(accepted & near_nu))
    e0 = jnp.linalg.norm(residual(ints, logres))

    def direction():
        lap = laplacian(y, ints)
        # inexact Newton: the linear solve only as accurate as the step can use
        # (relative residual <= min(0.1, relative error^2)): cheap far away,
        # quadratic near the end
        rel = jnp.where(logres, e0 / jnp.sqrt(n_active.astype(dt)), e0 / jnp.linalg.norm(nu))
        forcing = jnp.clip(rel**2, cg_tol, 0.1)
        # log residual: d log m = (L d) / m, so L d = -m (log m - log nu)
        rhs = jnp.where(logres, -ints.mass * residual(ints, True), nu - ints.mass)
        # the log phase measures the linear residual in log m (r / m): in mass units
        # a near-empty cell's rows are ~0 and its direction was left unsolved (such
        # directions did not decrease |log m - log nu|: the solve stalled)
        scale = jnp.where(logres, 1.0 / jnp.maximum(ints.mass, tiny), 1.0)
        return cg(lap, jacobi(lap), lap.diag, rhs, config.cg_iterations, forcing, scale)

    d = jax.lax.cond(go, direction, lambda: s.d)
    t_prev = jnp.where(ok, s.t, s.t_prev)
    # KMT backtracking, started from LS_GROWTH x the last accepted step
    t_go = jnp.minimum(
        jnp.where((s.phase == STAGE) & (s.k > 0), STAGE_STEP, 1.0), LS_GROWTH * t_prev
    )
    t = jnp.where(go, t_go, jnp.where(trial, s.t / 2.0, s.t))
    tries = jnp.where(go, 0, s.tries + 1)
    phase = jnp.where(
        redo,
        INIT,
        jnp.where(go, TRIAL, jnp.where(next_stage | needs_stage, STAGE, s.phase)),
    )
    k = jnp.where(next_stage, k + 1, k)
    dens = jax.lax.cond(
        next_stage | needs_stage,
        lambda: stage_density(density, k),
        lambda: s.dens,
    )
    return NewtonState(
        w,
        ints,
        d,
        t,
        t_prev,
        tries,
        it,
        evals,
        status,
        k,
        phase.astype(s.phase.dtype),
        s.warm & ~redo,
        s.near | accepted | redo,
        eps0,
        jnp.where(go, e0, s.e0),
        jnp.where(go, logres, s.logres),
        s.empty | (start & (eps_start <= 0)),
        s.stalled | stalled,
        s.done | finished,
        s.floor | at_floor,
        dens,
    )


def terminate(s: NewtonState) -> jax.Array:
    """Whether the solve is over: converged, out of iterations, or stalled."""
    return s.done | s.stalled


def result(s: NewtonState, problem: NewtonProblem) -> SolveResult:
    """The solve's outcome; NOT_CONVERGED unless the last stage met ``tol`` (or
    ``FLOOR_FACTOR x tol`` where it stopped at the rounding floor: ``error`` says which
    error it reached), EMPTY_CELL when the start had an empty cell."""
    e = _error(problem, s.ints)
    last = last_stage(problem.density)
    tol = jnp.where(s.floor, FLOOR_FACTOR * problem.tol, problem.tol)
    status = (
        s.status
        | jnp.where((e > tol) | (s.k < last) | s.stalled, NOT_CONVERGED, 0)
        | jnp.where(s.empty & (_active(problem.nu)[2] > 0), EMPTY_CELL, 0)
    ).astype(jnp.int32)
    return SolveResult(s.w, s.ints, s.it, s.evals, e, status)


@partial(jax.jit, static_argnames=("sizes", "max_iterations", "cg_iterations"))
def newton_solve(
    y, nu, density, w0, tol, sizes: Sizes, max_iterations: int, cg_iterations: int, hint=None
):
    """Damped Newton from ``w0`` (see :func:`solve_weights`): :func:`init`, then
    :func:`step` until :func:`terminate`, one evaluation per turn of a single loop (so
    the cell builder is compiled once).

    The first evaluation is at ``w0`` (cells from the nearby diagram ``hint``, if any).
    A warm start (``hint``) that empties a cell (the Diracs moved) or whose cells the grid
    cannot certify restarts cold, from Voronoi weights. A cold start whose smallest cell
    holds less than ``COLD_ENOUGH min(nu)`` runs through the stages of
    :mod:`~gmmot_core.semidiscrete.density`: the density blurred less and less, each
    solved loosely from the last, so that cells over almost no mass grow while the
    Hessian still sees them; otherwise the density is solved at once.

    Each stage starts with Newton on ``log m - log nu`` (acceptance by its norm, and a
    mass floor :data:`LOG_FLOOR` times KMT's) until every cell is within
    :data:`LOG_UNTIL` of its target, then goes on with ``m - nu``: a cell near empty
    is grown by a factor per step, instead of by ``nu - m`` all at once, which
    squeezes its neighbours."""
    problem = NewtonProblem(y, nu, density, tol)
    config = NewtonConfig(sizes, max_iterations, cg_iterations)
    state = init(problem, w0, config, hint)
    state = jax.lax.while_loop(lambda s: ~terminate(s), lambda s: step(s, problem, config), state)
    return result(state, problem)


def solve_weights(
    y,
    nu,
    density: ImageDensity,
    w0=None,
    tol=None,
    sizes: Sizes | None = None,
    max_iterations: int = MAX_ITERATIONS,
    cg_iterations: int = 4000,
    hint=None,
) -> SolveResult:
    """Damped Newton for ``w [N]`` with ``m_i(w) = nu_i`` (stop at max |m - nu| <= ``tol``,
    default 1e-8 in float64, 1e-5 in float32); ``w0`` warm-starts (default
    :func:`cold_weights`: Voronoi for Diracs inside the box); ``hint [N, V]``: the cell
    labels of a nearby diagram (``SolveResult.integrals.labels``), for a warm start.

    Each step solves ``L d = nu - m`` by CG and halves ``t`` (from 4x the last accepted
    step) until no cell holds less than ``eps0 = min(min nu, min m(w0)) / 2`` and
    ``|m - nu|`` decreased by ``(1 - t/2)``. When a size ran out (flagged in ``status``)
    the solve is repeated with it doubled, from ``w0`` again. Under ``jax.jit`` there
    is no repeat: the flags are returned. A cold start runs through a continuation
    (the density blurred less and less; see :func:`newton_solve`).
    """
    y = jnp.asarray(y)
    check_2d(positions=y)
    n = y.shape[0]
    dt = y.dtype
    sizes = sizes or default_sizes(n, density.rho.shape)
    tol = jnp.asarray((1e-8 if dt == jnp.float64 else 1e-5) if tol is None else tol, dt)
    w = cold_weights(y, density).astype(dt) if w0 is None else jnp.asarray(w0, dt)
    while True:
        res = newton_solve(y, nu, density, w, tol, sizes, max_iterations, cg_iterations, hint)
        if isinstance(res.status, jax.core.Tracer):
            return res._replace(sizes=sizes)
        bigger = grow_sizes(sizes, int(res.status), n)
        if bigger is None or not int(res.status) & SIZE_BITS:
            return res._replace(sizes=sizes)
        sizes, hint = bigger, None  # a hint has the old vertex count
