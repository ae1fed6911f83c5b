"""Test helpers shared by several modules (not fixtures)."""

import numpy as np


def random_spd(rng: np.random.Generator, n: int, cond: float = 10.0) -> np.ndarray:
    """``n`` random SPD 2x2 matrices with condition number ``cond`` -> ``[n, 2, 2]``."""
    theta = rng.uniform(0, np.pi, n)
    scale = rng.uniform(0.2, 3.0, n)
    rot = np.stack([np.cos(theta), -np.sin(theta), np.sin(theta), np.cos(theta)], -1)
    rot = rot.reshape(n, 2, 2)
    eig = np.stack([scale, scale / cond], -1)
    return np.einsum("nij,nj,nkj->nik", rot, eig, rot)


FIT = (  # a coupled-EM style mixture (weights, means, covs) far from the unit square
    np.array([0.3, 0.7]),
    np.array([[5.0, -3.0], [9.0, -1.0]]),
    np.array([[[4.0, 1.0], [1.0, 2.0]], [[1.0, 0.0], [0.0, 9.0]]]),
)
