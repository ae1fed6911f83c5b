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

__all__ = ["RawGMM", "cholesky2", "from_raw", "log_weights", "to_raw"]


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
    chol = cholesky2(gmm.covs)
    scale = jnp.stack([jnp.log(chol[:, 0, 0]), chol[:, 1, 0], jnp.log(chol[:, 1, 1])], axis=-1)
    logw = jnp.log(gmm.weights)
    return RawGMM(gmm.means, scale, logw[:-1] - logw[-1])
