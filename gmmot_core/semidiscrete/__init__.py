"""Exact semi-discrete OT from Diracs to a pixel-constant density.

W2^2 = sum_i int_{L_i} |x - y_i|^2 rho(x) dx (no 1/2 factor, as sdot) over the Laguerre
cells ``L_i`` whose weights solve ``m_i = nu_i``. Modules, by role: ``status`` (bits and
messages), ``density`` (pixel densities, blur stages), ``clip`` (polygon clipping),
``candidates`` (which Diracs cut a cell), ``cells`` (Laguerre cells), ``integrals``
(boundary-walk integrals), ``sizes`` (static sizes), ``hessian`` (Newton's Laplacian and
CG), ``newton`` (KMT damped Newton), ``descent`` (W2^2 with its gradients, Dirac
descent and Lloyd).
"""

from gmmot_core.semidiscrete.cells import Cells, power_cells
from gmmot_core.semidiscrete.density import (
    ImageDensity,
    density_from_values,
    gmm_values,
    image_density,
    pad_density,
)
from gmmot_core.semidiscrete.descent import (
    DescentState,
    Trace,
    cells_of,
    descend,
    descent_init,
    w2,
    w2_and_status,
    w2_solve,
)
from gmmot_core.semidiscrete.integrals import CellIntegrals, cell_integrals
from gmmot_core.semidiscrete.newton import SolveResult, solve_weights
from gmmot_core.semidiscrete.sizes import Sizes, default_sizes
from gmmot_core.semidiscrete.status import STOP_BITS, describe

__all__ = [
    "STOP_BITS",
    "CellIntegrals",
    "Cells",
    "DescentState",
    "ImageDensity",
    "Sizes",
    "SolveResult",
    "Trace",
    "cell_integrals",
    "cells_of",
    "default_sizes",
    "density_from_values",
    "descend",
    "descent_init",
    "describe",
    "gmm_values",
    "image_density",
    "pad_density",
    "power_cells",
    "solve_weights",
    "w2",
    "w2_and_status",
    "w2_solve",
]
