"""Static sizes of a semi-discrete solve, chosen and grown on the host."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gmmot_core.semidiscrete.candidates import Grid, default_grid
from gmmot_core.semidiscrete.status import (
    OVERFLOW_BINS,
    OVERFLOW_PIECES,
    OVERFLOW_RING,
    OVERFLOW_VERTICES,
    UNCERTIFIED,
)


def default_budget(n: int, shape: tuple[int, int]) -> int:
    """A piece budget for ``n`` cells on a ``shape`` image: twice the pieces of a uniform
    diagram (about 6 edges per cell plus the grid crossings of a total perimeter of
    ``3.7 sqrt(n)``), rounded up to a multiple of 8192 (every piece of the budget is
    integrated, used or not: a power of two cost up to 2x); exceeding it is flagged."""
    pieces = 6.0 * n + 3.7 * np.sqrt(n) * 1.3 * max(shape) + 64
    return int(8192 * np.ceil(2.0 * pieces / 8192))


class Sizes(NamedTuple):
    """Static sizes: ``max_vertices`` per cell, ``pieces`` in the boundary walk, the
    candidate ``grid`` (:class:`~.candidates.Grid`), ``ring``: neighbours per
    cell used to find candidates in a nearby diagram (see
    :func:`~gmmot_core.semidiscrete.candidates.ring_candidates`)."""

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
