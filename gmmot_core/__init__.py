"""gmmot_core: pure-JAX optimal transport between 2D Gaussian mixtures, clouds and images.

Imports jax, numpy and optax only (no UI libraries). Modules, one role each:
``gaussians`` (Bures / W2 between Gaussians), ``mixture`` (GMM pytree, EM),
``parametrization`` (OTT's unconstrained mixture parameters), ``sinkhorn``
(log-domain entropic OT).
"""

from gmmot_core import _xla_flags  # noqa: F401  (XLA:CPU flags, before JAX starts)
from gmmot_core.gaussians import (
    bures_barycenter,
    bures_cost_matrix,
    bures_squared,
    geodesic,
    ot_map,
    sqrtm2,
    w2_squared,
)
from gmmot_core.mixture import (
    GMM,
    SuffStats,
    em_step,
    expected_log_likelihood,
    fit_em,
    kmeans_pp,
    log_prob,
    log_responsibilities,
    sample,
    suff_stats,
)
from gmmot_core.parametrization import RawGMM, from_raw, to_raw
from gmmot_core.sinkhorn import SinkhornOutput, rho_from_tau, sinkhorn, tau_from_rho

__version__ = "0.1.0"

__all__ = [
    "GMM",
    "RawGMM",
    "SinkhornOutput",
    "SuffStats",
    "__version__",
    "bures_barycenter",
    "bures_cost_matrix",
    "bures_squared",
    "em_step",
    "expected_log_likelihood",
    "fit_em",
    "from_raw",
    "geodesic",
    "kmeans_pp",
    "log_prob",
    "log_responsibilities",
    "ot_map",
    "rho_from_tau",
    "sample",
    "sinkhorn",
    "sqrtm2",
    "suff_stats",
    "tau_from_rho",
    "to_raw",
    "w2_squared",
]
