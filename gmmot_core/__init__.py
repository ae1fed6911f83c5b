"""gmmot_core: pure-JAX optimal transport between 2D Gaussian mixtures, clouds and images.

Imports jax, numpy and optax only (no UI library, nothing of the host side). Modules,
one role each:

- ``gaussians``: W2 / Bures between Gaussians, OT maps, geodesics, Bures barycenters;
- ``mixture``: the ``GMM`` pytree, densities, posteriors, sampling, kmeans++, EM;
- ``parametrization``: OTT's unconstrained mixture parameters;
- ``sinkhorn``, ``newton_ot``: small dense entropic OT (Sinkhorn; damped Newton);
- ``gmm_ot``: GMM-OT couplings and their report, exact MW2², maps, interpolation;
- ``coupled_em``: coupled EM as init / step / run;
- ``barycenter``: free-support GMM barycenters;
- ``semidiscrete``: exact semi-discrete OT (Laguerre cells, KMT Newton, W2² and its
  gradients, Dirac descent);
- ``gmm_w2_fit``: fitting a GMM to points by the semi-discrete W2²;
- ``synthetic``, ``targets``, ``io``: demo data, target pictures, upload parsing.

The names below are the most used ones; the modules hold the rest.
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
