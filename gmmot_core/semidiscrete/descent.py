"""W2^2 with its gradients, Dirac gradient descent and Lloyd steps."""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gmmot_core.semidiscrete.cells import (
    Cells,
    labelled_cells,
    near_cells,
    power_cells,
    solved_cells,
)
from gmmot_core.semidiscrete.density import ImageDensity
from gmmot_core.semidiscrete.integrals import cell_integrals
from gmmot_core.semidiscrete.newton import newton_solve, solve_weights
from gmmot_core.semidiscrete.sizes import Sizes, grow_sizes
from gmmot_core.semidiscrete.status import RING_MISS, SIZE_BITS, STOP_BITS


def _uniform(positions, nu):
    n = positions.shape[0]
    return jnp.full((n,), 1.0 / n, positions.dtype) if nu is None else jnp.asarray(nu)


def w2_and_status(positions, density: ImageDensity, nu=None):
    """W2^2 of :func:`w2_solve` from a cold start, and the solve's status bits."""
    value, status, _, _ = w2_solve(positions, density, nu)
    return value, status


@partial(jax.custom_vjp, nondiff_argnums=(5,))
def w2_solve(
    positions, density: ImageDensity, nu=None, w0=None, hint=None, sizes: Sizes | None = None
):
    """W2^2 between the Diracs ``positions [N, 2]`` (masses ``nu [N]``, default uniform)
    and ``density`` by a Newton solve (cold, or warm from weights ``w0 [N]`` and the
    cell labels ``hint [N, V]`` of the solve that gave them), the solve's status bits
    (:mod:`~gmmot_core.semidiscrete.status`; :func:`describe` words them), its Laguerre
    weights ``[N]`` and its cell labels ``[N, V]`` (the next warm start). A solve that
    failed (any of ``STOP_BITS``) returns NaN, and NaN gradients.

    ``sizes`` (static) are the solve's; by default :func:`default_sizes`, grown on the
    host as needed, but under ``jit`` they cannot grow: pass sizes that fit the data.

    W2^2 is differentiable in ``positions``, ``nu`` and ``density`` (not in ``w0``,
    ``hint``):

    - ``positions``: ``2 m_i (y_i - b_i)`` (``b_i`` the barycentre of cell ``i``);
    - ``nu``: the Laguerre weights ``w`` shifted to mean zero (W2^2 is a maximum over
      ``w`` of ``sum_i w_i nu_i + int phi_w rho``; ``w`` is defined up to a constant, and
      the shifted one is the gradient's part along ``sum nu = 1``);
    - ``density``: per field of :class:`ImageDensity`, the derivative of
      ``int phi_w rho`` at those weights, ``phi_w(x) = min_i |x - y_i|^2 - w_i`` (the
      c-transform), taken exactly through the same boundary-walk pieces; built with
      :func:`~gmmot_core.semidiscrete.density.density_from_values`, this carries to the
      pixel values through the normalisation to mass 1. The box (``lo``, ``hi``) is
      held fixed (zero cotangent).
    """
    value, status, res = _solve(positions, density, nu, w0, hint, sizes)
    return value, status, res.weights, res.integrals.labels


def w2(positions, density: ImageDensity, nu=None):
    """W2^2 of :func:`w2_and_status` (NaN when the solve failed), differentiable."""
    return w2_and_status(positions, density, nu)[0]


def _dual_density_grad(res, y, density: ImageDensity, w_shift, active):
    """d/d(density fields) of ``int phi_w rho = sum_i int_{L_i} (|x - y_i|^2 - w_i) rho`` at
    the solved cells (the integrals are linear in the fields at fixed cells)."""
    sizes, labels = res.sizes, res.integrals.labels
    cells = jax.lax.stop_gradient(
        solved_cells(y, res.weights, density.lo, density.hi, sizes, labels, active)
    )

    def dual(d):
        ints = cell_integrals(cells, y, d, sizes.pieces)
        return jnp.sum(ints.second) - jnp.dot(w_shift, ints.mass)

    g = jax.grad(dual)(density)
    return g._replace(
        lo=jnp.zeros_like(density.lo),
        hi=jnp.zeros_like(density.hi),
        pixels=jnp.zeros_like(density.pixels),
    )


def _solve(positions, density, nu, w0=None, hint=None, sizes=None):
    y = jnp.asarray(positions)
    res = solve_weights(y, _uniform(y, nu), density, w0=w0, sizes=sizes, hint=hint)
    bad = (res.status & STOP_BITS) != 0
    value = jnp.where(bad, jnp.asarray(jnp.nan, y.dtype), jnp.sum(res.integrals.second))
    return value, res.status, res


def _w2_fwd(positions, density, nu, w0, hint, sizes):
    y = jnp.asarray(positions)
    value, status, res = _solve(y, density, nu, w0, hint, sizes)
    bad = (status & STOP_BITS) != 0
    nan = jnp.asarray(jnp.nan, y.dtype)
    # the weights shifted to mean zero over the Diracs that are not inert (0 on those)
    active = _uniform(y, nu) > 0
    mean_w = jnp.sum(jnp.where(active, res.weights, 0.0)) / jnp.sum(active)
    w = jnp.where(active, res.weights - mean_w, 0.0)
    grad_y = -2.0 * res.integrals.first  # 2 m_i (y_i - b_i) = -2 int (x - y_i) rho
    grad_d = _dual_density_grad(res, y, density, w, active)
    grads = jax.tree.map(lambda a: jnp.where(bad, nan, a), (grad_y, w, grad_d))
    grad_y, grad_nu, grad_d = grads
    primal = (value, status, res.weights, res.integrals.labels)
    return primal, (grad_y, None if nu is None else grad_nu, grad_d, w0, hint)


def _w2_bwd(sizes, saved, g):
    grad_y, grad_nu, grad_d, w0, hint = saved
    gv = g[0]
    grad_d = jax.tree.map(lambda a: gv * a, grad_d)
    no_w0 = None if w0 is None else jnp.zeros_like(w0)
    no_hint = None if hint is None else np.zeros(hint.shape, jax.dtypes.float0)
    return (gv * grad_y, grad_d, None if grad_nu is None else gv * grad_nu, no_w0, no_hint)


w2_solve.defvjp(_w2_fwd, _w2_bwd)


class Trace(NamedTuple):
    """Per step: ``w2 [steps]`` (W2^2 after the step), ``mass_error [steps]``
    (max |m_i - nu_i| / mean(nu) over the Diracs that are not inert, what the Newton
    solve left), and that solve's Newton ``iterations [steps]`` and diagram
    ``evaluations [steps]`` (0 past ``steps``)."""

    w2: jax.Array
    mass_error: jax.Array
    iterations: jax.Array
    evaluations: jax.Array


class DescentState(NamedTuple):
    """``positions [N, 2]``, ``weights [N]``, ``masses [N]``, ``barycenters [N, 2]``,
    ``w2`` (W2^2 at ``positions``), ``grad [N, 2]`` = 2 m (y - b), ``status`` (bits of
    :mod:`gmmot_core.semidiscrete`), ``step`` (steps done), ``labels [N, V]`` (the
    neighbour across each cell edge, -1 = box; the next diagram clips by them first)."""

    positions: jax.Array
    weights: jax.Array
    masses: jax.Array
    barycenters: jax.Array
    w2: jax.Array
    grad: jax.Array
    status: jax.Array
    step: jax.Array
    labels: jax.Array


def _state(y, res, step) -> DescentState:
    ints = res.integrals
    m = ints.mass
    safe = jnp.where(m > 0, m, 1.0)[:, None]
    b = jnp.where(m[:, None] > 0, y + ints.first / safe, y)
    return DescentState(
        y,
        res.weights,
        m,
        b,
        jnp.sum(ints.second),
        -2.0 * ints.first,
        res.status,
        step,
        ints.labels,
    )


def descent_init(positions, density: ImageDensity, nu, tol=None, sizes: Sizes | None = None):
    """Cold solve at ``positions``: the first state and the sizes it needed."""
    y = jnp.asarray(positions)
    res = solve_weights(y, nu, density, tol=tol, sizes=sizes)
    return _state(y, res, jnp.asarray(0)), res.sizes


@partial(jax.jit, static_argnames=("sizes", "length", "max_iterations", "with_cells"))
def _run(
    state,
    density,
    nu,
    lr,
    lloyd,
    tol,
    steps,
    sizes: Sizes,
    length: int,
    max_iterations: int,
    with_cells: bool = False,
):
    def step(s: DescentState):
        y = jnp.where(lloyd, s.barycenters, s.positions - lr * s.grad)
        res = newton_solve(y, nu, density, s.weights, tol, sizes, max_iterations, 4000, s.labels)
        new = _state(y, res, s.step + 1)
        # a flagged step is not taken: the run freezes and the host sees the flag
        keep = (s.status & STOP_BITS) != 0
        out = jax.tree.map(lambda a, b: jnp.where(keep, a, b), s, new)
        counts = (res.iterations.astype(jnp.int32), res.evaluations.astype(jnp.int32))
        return (out._replace(status=s.status | new.status), *counts)

    def idle(s: DescentState):
        return s, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32)

    def one(s: DescentState, i):
        out, its, evals = jax.lax.cond(i < steps, step, idle, s)  # steps traced: no recompile
        error = jnp.max(jnp.abs(out.masses - nu)) / mean_nu
        return out, Trace(out.w2, error, its, evals)

    mean_nu = jnp.sum(nu) / jnp.sum(nu > 0)

    state, trace = jax.lax.scan(one, state, jnp.arange(length))
    if not with_cells:
        return state, trace, None
    if sizes.grid.bins == 0:
        return state, trace, _cells(state, density, sizes, nu)
    y, w, lo, hi = state.positions, state.weights, density.lo, density.hi
    # from the solve's own labels: a second copy of the solve's cell builders in this
    # program took a third of its compile (``descend`` falls back where they miss)
    return state, trace, labelled_cells(y, w, lo, hi, sizes.max_vertices, state.labels, nu > 0)


def _cells(state: DescentState, density: ImageDensity, sizes: Sizes, nu=None) -> Cells:
    y, w, lo, hi = state.positions, state.weights, density.lo, density.hi
    active = None if nu is None else nu > 0
    if sizes.grid.bins == 0:  # all pairs: as the solve builds them (no ring search)
        return power_cells(y, w, lo, hi, sizes.max_vertices, sizes.grid, active=active)
    return near_cells(y, w, lo, hi, sizes, state.labels, active=active)


cells_of = jax.jit(_cells, static_argnames=("sizes",))

cells_of.__doc__ = """The Laguerre cells of ``state`` (for drawing a past step), jitted;
``nu [N]``: the Diracs' masses (those with 0, inert, own no cell)."""


def descend(
    state: DescentState,
    density: ImageDensity,
    nu,
    lr,
    lloyd,
    steps: int,
    sizes: Sizes,
    tol=None,
    max_iterations: int = 50,
    with_cells: bool = False,
    length: int | None = None,
):
    """``steps`` gradient (``lr``) or Lloyd (``lloyd`` True) steps from ``state``.

    Returns ``(state, trace, sizes, cells)`` (:class:`Trace` of the steps, ``[length]``;
    entries past ``steps`` repeat the last state) (``cells`` of the final state, in the same
    jitted call, when ``with_cells``; else None). ``length >= steps`` (default ``steps``)
    is the compiled scan length, so any ``steps`` up to it reuses one executable. When a
    diagram ran out of a static size the whole run is repeated from ``state`` with larger
    sizes (a recompile)."""
    dt = state.positions.dtype
    tol = jnp.asarray((1e-8 if dt == jnp.float64 else 1e-5) if tol is None else tol, dt)
    lr, lloyd = jnp.asarray(lr, dt), jnp.asarray(lloyd, bool)
    n = state.positions.shape[0]
    length = steps if length is None else length
    if not 0 <= steps <= length:
        raise ValueError(f"steps = {steps} must lie in [0, length = {length}]")
    while True:
        new, trace, cells = _run(
            state, density, nu, lr, lloyd, tol, jnp.int32(steps), sizes, length, max_iterations,
            with_cells,
        )  # fmt: skip
        bits = int(new.status) & ~int(state.status)
        bigger = grow_sizes(sizes, bits, n) if bits & SIZE_BITS else None
        if bigger is None:
            if cells is not None and int(cells.status) & RING_MISS:
                cells = cells_of(new, density, sizes, nu)  # labels not the diagram's
            return new, trace, sizes, cells
        sizes = bigger
        state = state._replace(labels=_fit(state.labels, sizes.max_vertices))


def _fit(labels, v: int):
    """``labels [N, V']`` padded with -1 (or cut) to ``V`` columns."""
    pad = v - labels.shape[1]
    if pad >= 0:
        return jnp.pad(labels, ((0, 0), (0, pad)), constant_values=-1)
    return labels[:, :v]
