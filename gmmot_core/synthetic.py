"""Synthetic datasets: the coupled-GMM notebook's demo clouds and simple shapes.

Every generator is deterministic in its ``seed`` and returns numpy ``[N, 2]`` points,
float32 (the app's embedded default data) but for the W2 fit's clouds
(:func:`outlier_clump`, :func:`three_blobs`), float64 as that fit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gmmot_core.mixture import GMM, sample

__all__ = [
    "demo_generators",
    "demo_pair",
    "moons",
    "outlier_clump",
    "random_mixture",
    "random_mixtures",
    "random_pair",
    "rings",
    "three_blobs",
]


def _rot(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def demo_generators() -> tuple[GMM, GMM]:
    """The two generator mixtures of the "Fitting Coupled GMMs" demo (3 components each).

    Cloud 0: masses (0.2, 0.2, 0.6) at (2, -1), (-2, 0), (4, 3). Cloud 1 moves the
    components to (3, -1.5), (-3, -1), (3, 3), turns the first two slightly and the
    third one further, and reweights them to (0.4, 0.4, 0.2): a transport problem
    where mass must be created and destroyed.
    """
    c0 = np.array([[[0.6, 0.0], [0.0, 0.3]], [[1.8, 0.0], [0.0, 0.9]], [[1.5, -1.2], [-1.2, 1.5]]])
    turns = (0.044, -0.044, 0.35)
    c1 = np.stack([_rot(t) @ c @ _rot(t).T for t, c in zip(turns, c0, strict=True)])
    c1[2] *= np.array([[0.85, 1.0], [1.0, 1.0]])  # a little narrower along x
    g0 = GMM(
        jnp.asarray([0.2, 0.2, 0.6], jnp.float32),
        jnp.asarray([[2.0, -1.0], [-2.0, 0.0], [4.0, 3.0]], jnp.float32),
        jnp.asarray(c0, jnp.float32),
    )
    g1 = GMM(
        jnp.asarray([0.4, 0.4, 0.2], jnp.float32),
        jnp.asarray([[3.0, -1.5], [-3.0, -1.0], [3.0, 3.0]], jnp.float32),
        jnp.asarray(c1, jnp.float32),
    )
    return g0, g1


def demo_pair(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples from each demo generator -> ``(points0 [n, 2], points1 [n, 2])``."""
    g0, g1 = demo_generators()
    k0, k1 = jax.random.split(jax.random.key(seed))
    return np.asarray(sample(g0, k0, n)), np.asarray(sample(g1, k1, n))


def random_pair(
    n: int = 2000,
    seed: int = 0,
    shift: float = 3.0,
    rotation: float = 30.0,
    reweight: float = 0.5,
    n_components: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Samples of a random mixture and of a moved copy -> ``([n, 2], [n, 2])``.

    Mixture 0: ``n_components`` Gaussians with means uniform in [-4, 4]^2, random
    orientations, axis variances in [0.2, 1.5] and Dirichlet(2) weights. Mixture 1 is
    mixture 0 rotated by ``rotation`` degrees about the origin, shifted by ``shift``
    along x, with weights ``(1 - reweight) w + reweight w[::-1]`` (0 = same masses,
    1 = masses reversed: the coupling must then create and destroy mass).
    """
    rng = np.random.default_rng(seed)
    k = n_components
    means = rng.uniform(-4.0, 4.0, size=(k, 2))
    rots = np.stack([_rot(t) for t in rng.uniform(0.0, np.pi, k)])
    covs = np.einsum("kij,kj,klj->kil", rots, rng.uniform(0.2, 1.5, size=(k, 2)), rots)
    w = rng.dirichlet(np.full(k, 2.0))
    r = _rot(np.deg2rad(rotation))
    means1 = means @ r.T + np.array([shift, 0.0])
    covs1 = r @ covs @ r.T
    w1 = (1.0 - reweight) * w + reweight * w[::-1]
    g0 = GMM(*(jnp.asarray(x, jnp.float32) for x in (w, means, covs)))
    g1 = GMM(*(jnp.asarray(x, jnp.float32) for x in (w1 / w1.sum(), means1, covs1)))
    k0, k1 = jax.random.split(jax.random.key(seed))
    return np.asarray(sample(g0, k0, n)), np.asarray(sample(g1, k1, n))


def moons(n: int = 2000, seed: int = 0, noise: float = 0.1) -> np.ndarray:
    """Two interleaved half circles (non-Gaussian) -> ``[n, 2]``."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, np.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(t), 1.0 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    pts = np.stack([x, y], -1) * 2.0 + rng.normal(scale=noise * 2.0, size=(n, 2))
    return pts.astype(np.float32)


def rings(n: int = 2000, seed: int = 0, noise: float = 0.08) -> np.ndarray:
    """Two concentric rings of radii 1 and 2.5 (non-Gaussian) -> ``[n, 2]``."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, 2.0 * np.pi, n)
    r = np.where(rng.random(n) < 0.4, 1.0, 2.5) + rng.normal(scale=noise * 2.0, size=n)
    return np.stack([r * np.cos(t), r * np.sin(t)], -1).astype(np.float32)


NOTEBOOK_CENTERS = ((-20.0, -15.0), (60.0, -15.0), (50.0, 65.0))  # OTT notebook's ``cs``
NOTEBOOK_SCALES = (4.0, 3.0, 5.0)  # its ``ss``


def random_mixture(
    key: jax.Array,
    n_components: int,
    mean_spread: float,
    scale: float,
    center,
    weight_spread: float = 0.1,
) -> GMM:
    """One random mixture, OTT's ``GaussianMixture.from_random`` draw for draw (2D).

    Component k gets its own key; from it, mean ``center + mean_spread N(0, I)`` and
    covariance ``Q diag(scale exp(N(0, I))) Q^T`` with ``Q`` the QR factor of a
    Gaussian matrix. Weights ``softmax([weight_spread N(0, I_{K-1}), 0])``, drawn with
    the last component's key, as OTT does. Float32 ``GMM`` of ``n_components``.
    """
    means, covs = [], []
    sub = key
    for _ in range(n_components):
        key, sub = jax.random.split(key)
        _, k_mean, k_cov = jax.random.split(sub, 3)
        means.append(jax.random.normal(k_mean, (2,)) * mean_spread + jnp.asarray(center))
        k_eig, k_rot = jax.random.split(k_cov)
        q, _ = jnp.linalg.qr(jax.random.normal(k_rot, (2, 2)))
        eig = scale * jnp.exp(jax.random.normal(k_eig, (2,)))
        covs.append((q * eig[None, :]) @ q.T)
    logits = jax.random.normal(sub, (n_components - 1,)) * weight_spread
    logits = jnp.concatenate([logits, jnp.zeros((1,), logits.dtype)])
    covs = jnp.stack(covs)
    covs = 0.5 * (covs + jnp.swapaxes(covs, -1, -2))
    return GMM(jax.nn.softmax(logits), jnp.stack(means), covs)


def random_mixtures(
    seed: int = 0,
    n_components: tuple[int, ...] = (2, 3, 5),
    centers: tuple[tuple[float, float], ...] = NOTEBOOK_CENTERS,
    scales: tuple[float, ...] = NOTEBOOK_SCALES,
    alpha: float = 50.0,
    mean_spreads: tuple[float, ...] | None = None,
) -> tuple[list[GMM], np.ndarray]:
    """OTT's barycenter notebook's inputs: M random mixtures and barycentric weights.

    From ``key = PRNGKey(seed)`` split in three: weights ``lambdas ~ Dirichlet(alpha 1_M)``
    from the first key, per-mixture seeds ``randint(0, 100)`` from the second, and
    mixture j drawn by :func:`random_mixture` from ``PRNGKey(seeds[j])`` around ridge
    ``centers[j]`` with covariance scale ``scales[j]`` and mean spread
    ``mean_spreads[j]`` (default, as the notebook: ``0.1 * mean(centers[j])``). The
    defaults are the notebook's setup (seeds 22, 22, 96). Returns ``(mixtures,
    lambdas [M])``, float32.
    """
    m = len(n_components)
    if not len(centers) == len(scales) == m:
        raise ValueError("n_components, centers and scales need one entry per mixture")
    if mean_spreads is None:
        mean_spreads = tuple(0.1 * float(np.mean(c)) for c in centers)
    keys = jax.random.split(jax.random.PRNGKey(seed), 3)
    lambdas = np.asarray(jax.random.dirichlet(keys[0], jnp.full((m,), alpha)), np.float32)
    seeds = np.asarray(jax.random.randint(keys[1], (m,), 0, 100))
    mixtures = [
        random_mixture(jax.random.PRNGKey(int(s)), k, spread, scale, jnp.asarray(c, jnp.float32))
        for s, k, spread, scale, c in zip(
            seeds, n_components, mean_spreads, scales, centers, strict=True
        )
    ]
    return mixtures, lambdas


def outlier_clump(n: int = 600, seed: int = 0) -> np.ndarray:
    """Two clusters and 6% of the points in a far, tight clump, float64 ``[n, 2]``: where
    the W2 fit and EM's likelihood disagree."""
    rng = np.random.default_rng(seed)
    m = max(1, round(0.06 * n))
    a = (n - m) // 2
    return np.concatenate(
        [
            rng.normal([0.0, 0.0], 0.5, (a, 2)),
            rng.normal([3.0, 0.0], 0.5, (n - m - a, 2)),
            rng.normal([1.5, 6.0], 0.15, (m, 2)),
        ]
    )


def three_blobs(n: int = 2000, seed: int = 0) -> np.ndarray:
    """Samples of a 3-component mixture (weights 0.5 / 0.3 / 0.2), float64 ``[n, 2]``."""
    g = GMM(
        jnp.array([0.5, 0.3, 0.2]),
        jnp.array([[0.0, 0.0], [3.0, 1.0], [0.5, 3.0]]),
        jnp.array([[[0.5, 0.2], [0.2, 0.4]], [[0.3, 0.0], [0.0, 0.6]], [[0.2, -0.1], [-0.1, 0.3]]]),
    )
    return np.asarray(sample(g, jax.random.PRNGKey(seed), n), np.float64)
