"""Exact semi-discrete OT from Diracs to a pixel-constant density: damped Newton on the
Laguerre weights (Kitagawa-Merigot-Thibert) and W2^2 with its closed-form gradient.

W2^2 = sum_i int_{L_i} |x - y_i|^2 rho(x) dx (no 1/2 factor, as sdot), with the weights
``w`` solved so that every cell holds mass ``nu_i``. Its gradient in ``y_i`` is
``2 m_i (y_i - b_i)`` (``b_i`` the cell barycentre), so a Lloyd step ``y <- b`` is a
gradient step with learning rate ``1 / (2 m_i)``.

Static sizes (:class:`Sizes`: candidates per cell, vertices per cell, boundary pieces)
are chosen on the host. A jitted solve never truncates silently: it flags the size that
ran out, and :func:`solve_weights` re-runs with that size doubled, warm-started.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from gmmot_core import continuation
from gmmot_core.laguerre import (
    OVERFLOW_BINS,
    OVERFLOW_PIECES,
    OVERFLOW_RING,
    OVERFLOW_VERTICES,
    RING_MISS,
    STACKED,
    UNCERTIFIED,
    CellIntegrals,
    Cells,
    Grid,
    ImageDensity,
    by_marked,
    cell_integrals,
    default_budget,
    default_grid,
    inconsistent_cells,
    power_cells,
    repair_cells,
    ring_candidates,
)

__all__ = [
    "EMPTY_CELL",
    "NOT_CONVERGED",
    "SIZE_BITS",
    "Sizes",
    "SolveResult",
    "cold_weights",
    "default_sizes",
    "grow_sizes",
    "integrals",
    "near_cells",
    "solve_weights",
    "w2",
]

NOT_CONVERGED = 16  # Newton stopped at its iteration cap or its line search failed
EMPTY_CELL = 32  # a cell holds no mass at the start (zero density under it): Newton cannot start
# fixed by larger sizes
SIZE_BITS = UNCERTIFIED | OVERFLOW_VERTICES | OVERFLOW_PIECES | OVERFLOW_BINS | OVERFLOW_RING


class Sizes(NamedTuple):
    """Static sizes: ``max_vertices`` per cell, ``pieces`` in the boundary walk, the
    candidate ``grid`` (see :class:`~gmmot_core.laguerre.Grid`), ``ring``: neighbours per
    cell used to find candidates in a nearby diagram (see
    :func:`~gmmot_core.laguerre.ring_candidates`)."""

    max_vertices: int
    pieces: int
    grid: Grid
    ring: int = 16


def default_sizes(n: int, shape: tuple[int, int]) -> Sizes:
    """Sizes that fit near-uniform weights; :func:`grow_sizes` enlarges what runs out."""
    return Sizes(16, default_budget(n, shape), default_grid(n), 16)


def grow_sizes(sizes: Sizes, status: int, n: int) -> Sizes | None:
    """Enlarge every size whose status bit is set (None when nothing can grow): four times
    the rescued cells (all pairs once that covers every cell) when cells were not certified,
    twice the vertices, pieces, ring candidates or bin capacity on overflow."""
    v, p, grid, ring = sizes
    if status & OVERFLOW_RING:
        ring = 2 * ring
    if status & UNCERTIFIED and grid.bins:
        rescue = 4 * grid.rescue
        grid = Grid(0, 0, 0) if rescue >= n else grid._replace(rescue=rescue)
    if status & OVERFLOW_BINS and grid.bins:
        grid = grid._replace(cap=2 * grid.cap)
    if status & OVERFLOW_VERTICES:
        v = 2 * v
    if status & OVERFLOW_PIECES or v != sizes.max_vertices:
        p = 2 * p
    new = Sizes(v, p, grid, ring)
    return None if new == sizes else new


class SolveResult(NamedTuple):
    """``weights [N]``, the cells' ``integrals`` at those weights, Newton ``iterations``,
    diagrams ``evaluations``, ``error`` = max |m_i - nu_i| and ``status`` (laguerre bits
    | NOT_CONVERGED | EMPTY_CELL); ``sizes`` used (set by :func:`solve_weights`)."""

    weights: jax.Array
    integrals: CellIntegrals
    iterations: jax.Array
    evaluations: jax.Array
    error: jax.Array
    status: jax.Array
    sizes: Sizes | None = None


def integrals(y, w, density: ImageDensity, sizes: Sizes, hint=None, ring=None) -> CellIntegrals:
    """Cells of ``(y, w)`` and their exact integrals; ``hint [N, H]``: likely neighbours,
    ``ring [N, C]``: the only candidates (see :func:`~gmmot_core.laguerre.power_cells`)."""
    cells = power_cells(
        y, w, density.lo, density.hi, sizes.max_vertices, sizes.grid, hint, ring=ring
    )
    return cell_integrals(cells, y, density, sizes.pieces)


# a ring diagram that misses a cut is repaired cell by cell when at most N / REPAIR_SHARE
# cells are marked (measured at N = 5000 on the tutorial target: most misses mark 5-450
# cells, a few far trials over 1000)
REPAIR_SHARE = 8


def near_cells(
    y, w, lo, hi, sizes: Sizes, labels, fallback: bool = True, repeats: int = 3, ring=None
):
    """Cells of ``(y, w)`` from the neighbours of a nearby diagram (``labels [N, V]``;
    ``ring``: ``ring_candidates(labels, sizes.ring)`` when already at hand).

    Where those do not tile the box, the cells found (which contain the true ones, so
    their neighbours are real near-neighbours) seed a wider ring, up to ``repeats``
    times; then, with ``fallback``, the candidate grid. A miss that remains is flagged
    RING_MISS, and OVERFLOW_RING when a ring was truncated."""

    def build(labels, ring=None, around=False):
        if ring is None:
            ring = ring_candidates(labels, sizes.ring, around)
        ring, more = ring
        cells = power_cells(y, w, lo, hi, sizes.max_vertices, sizes.grid, labels, ring=ring)
        return cells, more

    def missed(c):
        return (c.status & RING_MISS) != 0

    def again(s):
        # a cell that the ring cells left empty is empty (they contain the true ones):
        # its neighbours are lost, and no widening finds them; a Newton trial with it
        # is rejected anyway
        cells, _, k = s
        return missed(cells) & (k < repeats) & ~jnp.any(cells.count == 0)

    n = y.shape[0]

    def widen(s):
        # the cells around unconfirmed vertices (where cuts were missed, as a rule) rebuilt
        # alone from the widened ring, when they are few; else every cell
        cells, _, k = s

        def every(c):  # none marked (yet the box is not tiled), or too many
            return build(c.labels, around=True)

        cells, more = by_marked(
            inconsistent_cells(cells.labels),
            max(64, n // REPAIR_SHARE),
            lambda sel, c: repair_cells(y, w, lo, hi, c, sel, sizes.ring),
            every,
            every,
            cells,
        )
        return cells, more, k + 1

    cells, more = build(labels, ring)
    if repeats:
        # behind a cond: a while loop costs ~6 ms at N = 5000 even when it does not turn
        # (XLA:CPU copies its carry), and most diagrams need no widening
        cells, more = jax.lax.cond(
            again((cells, more, 0)),
            lambda c: jax.lax.while_loop(again, widen, (*c, jnp.asarray(0)))[:2],
            lambda c: c,
            (cells, more),
        )
    cells = cells._replace(status=cells.status | jnp.where(missed(cells) & more, OVERFLOW_RING, 0))
    if not fallback:
        return cells
    return jax.lax.cond(
        missed(cells),
        lambda: power_cells(y, w, lo, hi, sizes.max_vertices, sizes.grid, labels),
        lambda: cells,
    )


class _Laplacian(NamedTuple):
    """The weighted cell-adjacency Laplacian ``dm/dw``: ``L x = diag x - sum_k c[:, k]
    x[nb[:, k]]`` with ``c [N, W]`` (0 = no edge) and ``nb [N, W]`` neighbour indices."""

    c: jax.Array
    nb: jax.Array
    diag: jax.Array

    def __call__(self, x):
        return self.diag * x - jnp.sum(self.c * x[self.nb], 1)


def _laplacian(y, ints: CellIntegrals) -> _Laplacian:
    """The Laplacian dm/dw (off-diagonal ``-c_ij``, ``c_ij = int_ij rho ds /
    (2 |y_i - y_j|)``); called, it is the matvec.

    Each coefficient is the mean of the two cells' integrals of their shared edge (kept
    only where both cells have it), so the operator is exactly symmetric and its matvec
    is a gather, no scatter."""
    n = ints.labels.shape[0]
    nbr = ints.labels
    nb = jnp.clip(nbr, 0, n - 1)
    back = (nbr[nb] == jnp.arange(n)[:, None, None]) & (nbr >= 0)[..., None]  # [N, V, V]
    both = jnp.any(back, -1) & (nbr >= 0)
    mass = ints.edge_mass
    mass = jnp.where(both, 0.5 * (mass + jnp.sum(jnp.where(back, mass[nb], 0.0), -1)), 0.0)
    dist = jnp.sqrt(jnp.sum((y[:, None, :] - y[nb]) ** 2, -1))
    c = mass / (2.0 * jnp.where(dist > 0, dist, 1.0))
    return _Laplacian(c, nb, jnp.sum(c, 1))


def _jacobi(lap: _Laplacian):
    """``r -> D^-1 r`` (0 where a cell has no boundary density). A two-level
    preconditioner (a dense coarse solve on ~N/16 binned aggregates) was tried: 4x
    fewer CG iterations at N = 5000, but its inexact directions took 32 Newton steps
    where these take 28, and the solve was slower."""
    d = lap.diag
    inv = jnp.where(d > 0, 1.0 / jnp.where(d > 0, d, 1.0), 0.0)
    return lambda r: inv * r


def _cg(matvec, precondition, diag, rhs, iters: int, tol, scale=1.0):
    """Preconditioned CG for ``L x = rhs``, ``L`` a connected graph's Laplacian
    (singular only along constants). The right-hand side is first made to sum to zero
    by removing a multiple of ``diag`` (not of the constants, which would push cells
    with almost no boundary density by huge amounts); the Krylov space then stays in the
    range and no regularisation is needed. Stops when ``|scale r| <= tol |scale rhs|``
    (``scale [N]`` or 1), which keeps the result a descent direction for the residual
    measured in those units."""
    a = matvec
    total = jnp.sum(diag)
    rhs = rhs - diag * (jnp.sum(rhs) / jnp.where(total > 0, total, 1.0))
    z = precondition(rhs)
    bound = tol * jnp.linalg.norm(scale * rhs)
    init = (jnp.zeros_like(rhs), rhs, z, jnp.dot(rhs, z), jnp.asarray(0))

    def cond(s):
        return (s[4] < iters) & (jnp.linalg.norm(scale * s[1]) > bound)

    def body(s):
        x, r, p, rz, i = s
        ap = a(p)
        alpha = rz / jnp.dot(p, ap)
        x = x + alpha * p
        r = r - alpha * ap
        z = precondition(r)
        rz_new = jnp.dot(r, z)
        return x, r, z + (rz_new / rz) * p, rz_new, i + 1

    return jax.lax.while_loop(cond, body, init)[0]


def cold_weights(y, density: ImageDensity):
    """A start where every cell is non-empty: ``w_i = dist(y_i, box)^2``. With ``p_i`` the
    projection of ``y_i`` on the box, ``|x - y_i|^2 >= |x - p_i|^2 + w_i`` on the box,
    so ``p_i`` lies in cell ``i`` (Voronoi weights 0 for Diracs inside)."""
    p = jnp.clip(y, density.lo, density.hi)
    return jnp.sum((y - p) ** 2, -1)


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
INIT, STAGE, TRIAL = 0, 1, 2  # what the Newton loop evaluates next (see _newton)


def _evaluate(y, w, density: ImageDensity, sizes: Sizes, labels, near, fallback):
    """The one cell builder of a solve: cells of ``(y, w)`` and their integrals.

    All pairs when ``sizes.grid`` says so (small N: no candidate search is cheaper),
    clipped first by the neighbours in ``labels`` (the last diagram's: most cells are
    then final after that one pass; a ring and cell reuse cost more at this size).
    Otherwise, with ``near`` (traced), the ring candidates of the nearby diagram
    ``labels [N, V]``; where they miss a cut and ``fallback`` (traced) is set, or
    without ``near``, the candidate grid. A miss left is flagged RING_MISS."""
    lo, hi, v = density.lo, density.hi, sizes.max_vertices
    if sizes.grid.bins == 0:
        cells = power_cells(y, w, lo, hi, v, sizes.grid, labels)
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
            lambda: near_cells(y, w, lo, hi, sizes, labels, fallback=False),
            lambda: missed,
        )
        grid = (cells.status & RING_MISS != 0) & (fallback | ~near)
        cells = jax.lax.cond(
            grid, lambda: power_cells(y, w, lo, hi, v, sizes.grid, labels), lambda: cells
        )
    return cell_integrals(cells, y, density, sizes.pieces)


class _Loop(NamedTuple):
    """The Newton loop's carry: accepted ``w``, ``ints``; direction ``d``, trial step
    ``t``, last accepted step ``t_prev``, halvings ``tries``; counters; continuation
    stage ``k``; ``phase`` (INIT / STAGE / TRIAL: what the next evaluation is);
    ``warm``: still on the given weights; ``eps0``, ``e0``: KMT's floor and |m - nu|;
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
    dens: ImageDensity


@partial(jax.jit, static_argnames=("sizes", "max_iterations", "cg_iterations"))
def _newton(
    y, nu, density, w0, tol, sizes: Sizes, max_iterations: int, cg_iterations: int, hint=None
):
    """Damped Newton from ``w0`` (see :func:`solve_weights`), one evaluation per turn of
    a single loop (so the cell builder is compiled once).

    The first evaluation is at ``w0`` (cells from the nearby diagram ``hint``, if any).
    A warm start (``hint``) that empties a cell (the Diracs moved) or whose cells the grid
    cannot certify restarts cold, from Voronoi weights. A cold start whose smallest cell
    holds less than ``COLD_ENOUGH min(nu)`` runs through the stages of
    :mod:`~gmmot_core.continuation`: the density blurred less and less, each solved
    loosely from the last, so that cells over almost no mass grow while the Hessian
    still sees them; otherwise the density is solved at once.

    Each stage starts with Newton on ``log m - log nu`` (acceptance by its norm, and a
    mass floor :data:`LOG_FLOOR` times KMT's) until every cell is within
    :data:`LOG_UNTIL` of its target, then goes on with ``m - nu``: a cell near empty
    is grown by a factor per step, instead of by ``nu - m`` all at once, which
    squeezes its neighbours (on the tutorial target at N = 5000: 77 -> 41 diagrams)."""
    dt = y.dtype
    n = y.shape[0]
    last = continuation.stage_count(density.rho.shape) - 1
    cg_tol = jnp.asarray(1e-10 if dt == jnp.float64 else 1e-5, dt)
    labels0 = (
        jnp.full((n, sizes.max_vertices), -1, jnp.int32) if hint is None else hint.astype(jnp.int32)
    )
    with_hint = jnp.asarray(hint is not None)

    def err(ints):
        return jnp.max(jnp.abs(ints.mass - nu))

    tiny = jnp.finfo(dt).tiny
    log_ok = jnp.min(nu) > 0
    log_nu = jnp.log(jnp.maximum(nu, tiny))

    def residual(ints, logres):
        # log m - log nu while far (cells near empty are grown by factors, not by
        # nu - m, which overshoots their neighbours), then m - nu
        m = ints.mass
        return jnp.where(logres, jnp.log(jnp.maximum(m, tiny)) - log_nu, m - nu)

    def body(s: _Loop) -> _Loop:
        x = jnp.where(s.phase == TRIAL, s.w + s.t * s.d, s.w)
        ints_x = _evaluate(y, x, s.dens, sizes, s.ints.labels, s.near, s.phase != TRIAL)
        min_m = jnp.min(ints_x.mass)
        evals = s.evals + 1

        # INIT: the start. A failed warm start is replaced by Voronoi weights
        at_init = s.phase == INIT
        redo = at_init & s.warm & ((min_m <= 0) | ((ints_x.status & UNCERTIFIED) != 0))
        start = at_init & ~redo
        eps_start = 0.5 * jnp.minimum(jnp.min(nu), min_m)
        start_bad = ((ints_x.status & (SIZE_BITS | STACKED)) != 0) | (eps_start <= 0)
        k_start = jnp.where(s.warm | (min_m >= COLD_ENOUGH * jnp.min(nu)), last, 0)

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
        tol_k = jnp.where(k < last, jnp.maximum(tol, 0.3 * jnp.min(nu)), tol)
        converged = accepted & (err(ints) <= tol_k)
        next_stage = converged & (k < last)
        finished = (converged & (k == last)) | (accepted & ~converged & (it >= max_iterations))
        needs_stage = start & (k_start < last)  # a cold start's first stage is a blur
        go = accepted & ~converged & ~finished & ~stalled & ~needs_stage
        near_nu = jnp.max(jnp.abs(ints.mass - nu) / jnp.where(nu > 0, nu, 1.0)) <= LOG_UNTIL
        logres = log_ok & jnp.where(stage_start, ~near_nu, s.logres & ~(accepted & near_nu))
        e0 = jnp.linalg.norm(residual(ints, logres))

        def direction():
            lap = _laplacian(y, ints)
            # inexact Newton: the linear solve only as accurate as the step can use
            # (relative residual <= min(0.1, relative error^2)): cheap far away,
            # quadratic near the end
            rel = jnp.where(logres, e0 / jnp.sqrt(n), e0 / jnp.linalg.norm(nu))
            forcing = jnp.clip(rel**2, cg_tol, 0.1)
            # log residual: d log m = (L d) / m, so L d = -m (log m - log nu)
            rhs = jnp.where(logres, -ints.mass * residual(ints, True), nu - ints.mass)
            # the log phase measures the linear residual in log m (r / m): in mass units
            # a near-empty cell's rows are ~0 and its direction was left unsolved (such
            # directions did not decrease |log m - log nu|: the solve stalled)
            scale = jnp.where(logres, 1.0 / jnp.maximum(ints.mass, tiny), 1.0)
            return _cg(lap, _jacobi(lap), lap.diag, rhs, cg_iterations, forcing, scale)

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
            lambda: continuation.stage_density(density, k),
            lambda: s.dens,
        )
        return _Loop(
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
            dens,
        )

    zero = jnp.asarray(0)
    ints0 = CellIntegrals(
        jnp.zeros((n,), dt),
        jnp.zeros((n, 2), dt),
        jnp.zeros((n,), dt),
        jnp.zeros((n, sizes.max_vertices), dt),
        labels0,
        jnp.asarray(0, jnp.int32),
    )
    init = _Loop(
        w0,
        ints0,
        jnp.zeros_like(w0),
        jnp.asarray(1.0, dt),
        jnp.asarray(1.0, dt),
        zero,
        zero,
        zero,
        jnp.asarray(0, jnp.int32),
        jnp.asarray(last),
        jnp.asarray(INIT),
        with_hint,
        with_hint,
        jnp.asarray(0.0, dt),
        jnp.asarray(0.0, dt),
        jnp.asarray(False),
        jnp.asarray(False),
        jnp.asarray(False),
        jnp.asarray(False),
        density,
    )
    out = jax.lax.while_loop(lambda s: ~s.done & ~s.stalled, body, init)
    e = err(out.ints)
    status = (
        out.status
        | jnp.where((e > tol) | (out.k < last) | out.stalled, NOT_CONVERGED, 0)
        | jnp.where(out.empty & (jnp.min(nu) > 0), EMPTY_CELL, 0)
    ).astype(jnp.int32)
    return SolveResult(out.w, out.ints, out.it, out.evals, e, status)


def solve_weights(
    y,
    nu,
    density: ImageDensity,
    w0=None,
    tol=None,
    sizes: Sizes | None = None,
    max_iterations: int = 100,
    cg_iterations: int = 4000,
) -> SolveResult:
    """Damped Newton for ``w [N]`` with ``m_i(w) = nu_i`` (stop at max |m - nu| <= ``tol``,
    default 1e-8 in float64, 1e-5 in float32); ``w0`` warm-starts (default
    :func:`cold_weights`: Voronoi for Diracs inside the box).

    Each step solves ``L d = nu - m`` by CG and halves ``t`` (from 4x the last accepted
    step) until no cell holds less than ``eps0 = min(min nu, min m(w0)) / 2`` and
    ``|m - nu|`` decreased by ``(1 - t/2)``. When a size ran out (flagged in ``status``)
    the solve is repeated with it doubled, from ``w0`` again. Under ``jax.jit`` there
    is no repeat: the flags are returned. A cold start runs through a continuation
    (the density blurred less and less; see :func:`_newton`).
    """
    y = jnp.asarray(y)
    n = y.shape[0]
    dt = y.dtype
    sizes = sizes or default_sizes(n, density.rho.shape)
    tol = jnp.asarray((1e-8 if dt == jnp.float64 else 1e-5) if tol is None else tol, dt)
    w = cold_weights(y, density).astype(dt) if w0 is None else jnp.asarray(w0, dt)
    while True:
        res = _newton(y, nu, density, w, tol, sizes, max_iterations, cg_iterations)
        if isinstance(res.status, jax.core.Tracer):
            return res._replace(sizes=sizes)
        bigger = grow_sizes(sizes, int(res.status), n)
        if bigger is None or not int(res.status) & SIZE_BITS:
            return res._replace(sizes=sizes)
        sizes = bigger
        # from the start again: mid-solve weights are no cold start (the continuation
        # from them crawled, 100 Newton steps of tiny steps, where a size ran out mid-way)


def _uniform(positions, nu):
    n = positions.shape[0]
    return jnp.full((n,), 1.0 / n, positions.dtype) if nu is None else jnp.asarray(nu)


@jax.custom_vjp
def w2(positions, density: ImageDensity, nu=None):
    """W2^2 between the Diracs ``positions [N, 2]`` (masses ``nu``, default uniform) and
    ``density`` (cold Newton solve; differentiable: gradient ``2 m_i (y_i - b_i)``)."""
    return _w2_fwd(positions, density, nu)[0]


def _w2_fwd(positions, density, nu):
    res = solve_weights(positions, _uniform(positions, nu), density)
    grad = -2.0 * res.integrals.first  # 2 m_i (y_i - b_i) = -2 int (x - y_i) rho
    return jnp.sum(res.integrals.second), (grad, density, nu)


def _w2_bwd(saved, g):
    grad, density, nu = saved
    zero_density = jax.tree.map(jnp.zeros_like, density)
    return (g * grad, zero_density, None if nu is None else jnp.zeros_like(nu))


w2.defvjp(_w2_fwd, _w2_bwd)
