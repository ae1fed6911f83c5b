"""Shape buckets: a few static sizes that every user size maps onto.

Each array shape is its own XLA program, so a server compiles only the bucket sizes and
pads: Diracs with zero mass (inert: no cell, no cut, no motion; see
:class:`~gmmot_core.semidiscrete.newton.NewtonProblem`) and cloud points with zero
weight. The results on the user's rows are those of the unpadded run.
"""

from __future__ import annotations

import numpy as np

# consecutive buckets differ by at most this factor: at most a third of a padded run's
# rows are padding
RATIO = 1.5


def bucket(n: int, smallest: int = 64, ratio: float = RATIO) -> int:
    """The smallest bucket ``>= n``: ``smallest`` times powers of ``ratio``, rounded up to
    a multiple of 8 (so neighbouring buckets stay apart)."""
    if n < 1:
        raise ValueError(f"size must be at least 1, got {n}")
    b = float(smallest)
    while int(8 * np.ceil(b / 8)) < n:
        b *= ratio
    return int(8 * np.ceil(b / 8))


def buckets_up_to(n: int, smallest: int = 64, ratio: float = RATIO) -> list[int]:
    """Every bucket up to the one that holds ``n``."""
    out = [bucket(1, smallest, ratio)]
    while out[-1] < n:
        out.append(bucket(out[-1] + 1, smallest, ratio))
    return out


def pad_diracs(positions, nu, size: int):
    """``positions [N, 2]``, ``nu [N]`` padded to ``size`` rows with inert Diracs (mass 0,
    placed on the first finite Dirac; they never move). Returns numpy arrays of the inputs'
    dtypes."""
    y, m = np.asarray(positions), np.asarray(nu)
    pad = size - y.shape[0]
    if pad < 0:
        raise ValueError(f"{y.shape[0]} Diracs do not fit a bucket of {size}")
    finite = np.flatnonzero(np.all(np.isfinite(y), 1))
    fill = y[finite[:1]] if finite.size else np.zeros((1, y.shape[1]), y.dtype)
    return (
        np.concatenate([y, np.repeat(fill, pad, 0)]),
        np.concatenate([m, np.zeros(pad, m.dtype)]),
    )


def pad_points(points, weights, size: int):
    """A weighted cloud ``points [N, D]``, ``weights [N]`` padded to ``size`` rows with
    zero-weight copies of its first finite point (they count in no sum; a non-finite
    row would be reported as dropped)."""
    return pad_diracs(points, weights, size)


# image grids: squares of these sides, so every picture is held in one of five grids (a
# solve's piece budget follows the longer side; the array's size costs little:
# benchmarks/image_grids.py)
IMAGE_SIDES = (64, 128, 256, 512, 1024)


def image_grid(shape: tuple[int, int]) -> tuple[int, int]:
    """The padded array ``[S, S]`` for an image of ``shape`` pixels: ``S`` its longer side
    rounded up to :data:`IMAGE_SIDES` (a longer side beyond them is kept)."""
    side = max(shape)
    side = next((s for s in IMAGE_SIDES if s >= side), side)
    return side, side
