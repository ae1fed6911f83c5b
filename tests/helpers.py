"""Test helpers shared by several modules (not fixtures)."""

import jax.numpy as jnp
import numpy as np

from gmmot_core import GMM


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


def separated_pair(separation: float, seed: int = 0, n: int = 2000):
    """Two K=2 clouds ``[n, 2]`` (float32) whose blobs sit ``separation`` apart, with
    mismatched weights (0.7/0.3 vs 0.4/0.6), and their generating mixtures: a balanced
    coupling must carry 0.3 of the mass across the off-diagonal Bures cost ~ separation^2.
    -> ``(x0, x1, gmm0, gmm1)``."""
    rng = np.random.default_rng(seed)
    centers0 = np.array([(0.0, 0.0), (separation, 0.0)])
    centers1 = centers0 + np.array([0.0, 0.2])

    def cloud(weights, centers):
        k = rng.choice(2, n, p=weights)
        return (centers[k] + 0.3 * rng.standard_normal((n, 2))).astype(np.float32)

    def gmm(weights, centers):
        covs = np.tile(0.09 * np.eye(2, dtype=np.float32), (2, 1, 1))
        return GMM(jnp.asarray(weights, jnp.float32), jnp.asarray(centers, jnp.float32), covs)

    x0, x1 = cloud([0.7, 0.3], centers0), cloud([0.4, 0.6], centers1)
    return x0, x1, gmm([0.7, 0.3], centers0), gmm([0.4, 0.6], centers1)
