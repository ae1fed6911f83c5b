"""Dirac gradient descent and Lloyd iterations on the exact semi-discrete W2^2.

One step moves the Diracs ``y [N, 2]`` along the gradient ``2 m_i (y_i - b_i)`` (learning
rate ``lr``, traced) or to their cell barycentres ``b_i`` (Lloyd, a traced switch), then
re-solves the weights by damped Newton warm-started from the previous ones. A run of
steps is one jitted ``lax.scan``; its static sizes come from the host (:func:`descend`
enlarges them and repeats the run when a diagram flags that one ran out).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from gmmot_core.laguerre import STACKED, Cells, ImageDensity, power_cells
from gmmot_core.semidiscrete import (
    EMPTY_CELL,
    NOT_CONVERGED,
    SIZE_BITS,
    Sizes,
    _newton,
    grow_sizes,
    near_cells,
    solve_weights,
)

__all__ = ["STOP_BITS", "DescentState", "Trace", "cells_of", "descend", "descent_init"]

STOP_BITS = SIZE_BITS | STACKED | NOT_CONVERGED | EMPTY_CELL


class Trace(NamedTuple):
    """Per step: ``w2 [steps]`` (W2^2 after the step) and ``mass_error [steps]``
    (max |m_i - nu_i| / mean(nu), what the Newton solve left)."""

    w2: jax.Array
    mass_error: jax.Array


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
    def step(s: DescentState) -> DescentState:
        y = jnp.where(lloyd, s.barycenters, s.positions - lr * s.grad)
        res = _newton(y, nu, density, s.weights, tol, sizes, max_iterations, 4000, s.labels)
        new = _state(y, res, s.step + 1)
        # a flagged step is not taken: the run freezes and the host sees the flag
        keep = (s.status & STOP_BITS) != 0
        out = jax.tree.map(lambda a, b: jnp.where(keep, a, b), s, new)
        return out._replace(status=s.status | new.status)

    def one(s: DescentState, i):
        out = jax.lax.cond(i < steps, step, lambda s: s, s)  # steps is traced: no recompile
        return out, Trace(out.w2, jnp.max(jnp.abs(out.masses - nu)) / jnp.mean(nu))

    state, trace = jax.lax.scan(one, state, jnp.arange(length))
    if not with_cells:
        return state, trace, None
    return state, trace, _cells(state, density, sizes)


def _cells(state: DescentState, density: ImageDensity, sizes: Sizes) -> Cells:
    y, w, lo, hi = state.positions, state.weights, density.lo, density.hi
    if sizes.grid.bins == 0:  # all pairs: as the solve builds them (no ring search)
        return power_cells(y, w, lo, hi, sizes.max_vertices, sizes.grid)
    return near_cells(y, w, lo, hi, sizes, state.labels)


cells_of = jax.jit(_cells, static_argnames=("sizes",))
cells_of.__doc__ = "The Laguerre cells of ``state`` (for drawing a past step), jitted."


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
            return new, trace, sizes, cells
        sizes = bigger
        state = state._replace(labels=_fit(state.labels, sizes.max_vertices))


def _fit(labels, v: int):
    """``labels [N, V']`` padded with -1 (or cut) to ``V`` columns."""
    pad = v - labels.shape[1]
    if pad >= 0:
        return jnp.pad(labels, ((0, 0), (0, pad)), constant_values=-1)
    return labels[:, :v]
