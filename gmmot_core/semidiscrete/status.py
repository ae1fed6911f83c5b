"""Status bits of the semi-discrete solvers: one vocabulary for the cells, the Newton
solve and the descent, with the message a user reads for each bit."""

from __future__ import annotations

OVERFLOW_VERTICES = 1  # a cell needed more than max_vertices vertices
UNCERTIFIED = 2  # more cells than grid.rescue were not certified by their block of bins
OVERFLOW_PIECES = 4  # the boundary walk needed more than `budget` pieces
STACKED = 8  # two Diracs share a position (their cells are ill-defined)
NOT_CONVERGED = 16  # Newton stopped at its iteration cap or its line search failed
EMPTY_CELL = 32  # a cell holds no mass at the start (zero density under it): Newton cannot start
OVERFLOW_BINS = 64  # a bin of the candidate grid held more than its capacity
RING_MISS = 128  # cells built from ring candidates do not tile the box (a cut is missing)
OVERFLOW_RING = 256  # they missed one and a cell had more ring candidates than kept

# fixed by larger sizes (the host grows them; under jit they are reported)
SIZE_BITS = UNCERTIFIED | OVERFLOW_VERTICES | OVERFLOW_PIECES | OVERFLOW_BINS | OVERFLOW_RING
# a solve or a step with any of these is not a valid result
STOP_BITS = SIZE_BITS | STACKED | NOT_CONVERGED | EMPTY_CELL

MESSAGES = {
    OVERFLOW_VERTICES: "a cell needed more vertices than its static size",
    UNCERTIFIED: "the candidate grid could not certify some cells",
    OVERFLOW_PIECES: "the boundary walk needed more pieces than its static size",
    STACKED: "two Diracs share a position",
    NOT_CONVERGED: "Newton did not reach the mass tolerance",
    EMPTY_CELL: (
        "a cell holds no mass (zero density under it, or float32 prefix sums too coarse "
        "for this density: enable float64 with jax.config.update('jax_enable_x64', True), "
        "or add a floor to the image)"
    ),
    OVERFLOW_BINS: "a bin of the candidate grid overflowed",
    RING_MISS: "cells from a nearby diagram missed a cut",
    OVERFLOW_RING: "a cell had more ring candidates than its static size",
}


def describe(status: int) -> str:
    """The messages of the bits set in ``status`` ('' when none), joined by '; '. Size
    bits say what to do: call outside ``jit`` (sizes grow) or pass larger sizes."""
    status = int(status)
    parts = [msg for bit, msg in MESSAGES.items() if status & bit]
    if status & SIZE_BITS:
        parts.append("outside jit the sizes grow by themselves; under jit pass larger Sizes")
    return "; ".join(parts)
