"""Unconstrained parametrisation of a 2D mixture, the one OTT-JAX's Adam acts on.

``RawGMM``: ``loc [K, 2]``; ``scale_params [K, 3]`` = ``(log L00, L10, log L11)`` of
the lower Cholesky factor ``L`` with ``cov = L L^T``; ``weight_params [K-1]`` with
``weights = softmax([weight_params, 0])``. Gradient steps on these keep every
covariance SPD and the weights on the simplex, and follow OTT's path exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gmmot_core.mixture import GMM

__all__ = ["RawGMM", "cholesky2", "floor_covariances", "from_raw", "log_weights", "to_raw"]


class RawGMM(NamedTuple):
    """Unconstrained mixture: ``loc [K, 2]``, ``scale_params [K, 3]``, ``weight_params [K-1]``."""

    loc: jax.Array
    scale_params: jax.Array
    weight_params: jax.Array


def cholesky2(cov: jax.Array) -> jax.Array:
    """Lower Cholesky factor of SPD ``[..., 2, 2]`` matrices (closed form)."""
    l00 = jnp.sqrt(cov[..., 0, 0])
    l10 = cov[..., 1, 0] / l00
    l11 = jnp.sqrt(cov[..., 1, 1] - l10**2)
    zero = jnp.zeros_like(l00)
    return jnp.stack([jnp.stack([l00, zero], -1), jnp.stack([l10, l11], -1)], -2)


def log_weights(raw: RawGMM) -> jax.Array:
    """log of the component weights ``[K]`` (``log_softmax([weight_params, 0])``)."""
    logits = jnp.concatenate([raw.weight_params, jnp.zeros((1,), raw.weight_params.dtype)])
    return jax.nn.log_softmax(logits)


def from_raw(raw: RawGMM) -> GMM:
    """Constrained mixture from its unconstrained parameters."""
    sp = raw.scale_params
    l00, l10, l11 = jnp.exp(sp[:, 0]), sp[:, 1], jnp.exp(sp[:, 2])
    c00 = l00 * l00
    c10 = l10 * l00
    c11 = l10 * l10 + l11 * l11
    covs = jnp.stack([jnp.stack([c00, c10], -1), jnp.stack([c10, c11], -1)], -2)
    return GMM(jnp.exp(log_weights(raw)), raw.loc, covs)


def to_raw(gmm: GMM) -> RawGMM:
    """Unconstrained parameters of a mixture (weights must be > 0)."""
    logw = jnp.log(gmm.weights)
    return RawGMM(gmm.means, _scale_params(gmm.covs), logw[:-1] - logw[-1])


def _scale_params(covs: jax.Array) -> jax.Array:
    """``(log L00, L10, log L11) [K, 3]`` of SPD ``covs [K, 2, 2]``."""
    chol = cholesky2(covs)
    return jnp.stack([jnp.log(chol[:, 0, 0]), chol[:, 1, 0], jnp.log(chol[:, 1, 1])], axis=-1)


def floor_covariances(raw: RawGMM, min_variance) -> RawGMM:
    """``raw`` with every covariance's eigenvalues raised to at least ``min_variance``
    (the nearest such matrix in Frobenius norm; eigenvectors, means and weights kept):
    the projection of a projected gradient step."""
    covs = from_raw(raw).covs
    a, b, c = covs[:, 0, 0], covs[:, 1, 0], covs[:, 1, 1]
    mid = (a + c) / 2
    half = jnp.sqrt(((a - c) / 2) ** 2 + b**2)
    big, small = mid + half, mid - half
    eye = jnp.eye(2, dtype=covs.dtype)
    # projector on the small eigenvalue's eigenvector: (big I - cov) / (big - small)
    p_small = (big[:, None, None] * eye - covs) / jnp.where(half > 0, 2 * half, 1.0)[:, None, None]
    raised = covs + jnp.maximum(min_variance - small, 0.0)[:, None, None] * p_small
    # both eigenvalues under the floor (a round covariance too: its projector is 0)
    floored = jnp.where((big < min_variance)[:, None, None], min_variance * eye, raised)
    # components already above the floor keep their parameters bit for bit
    above = (small >= min_variance)[:, None]
    return raw._replace(scale_params=jnp.where(above, raw.scale_params, _scale_params(floored)))
