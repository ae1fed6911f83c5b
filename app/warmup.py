"""``panel serve --setup`` hook: compile the core once per process before any session.

:func:`warm_up` compiles what a first visit needs, before the page is served. Compiled
executables are kept in JAX's persistent cache (``GMMOT_JAX_CACHE``, default
``~/.cache/gmmot/jax``; ``off`` disables it), so a restarted server skips most of it; and
while the page is up, :mod:`gmmot.warm_more` fills that cache with the shapes a user
reaches next, in a low-priority child process (``GMMOT_WARM_MORE=0`` skips it; the
browser tests do, to keep their cores).
"""

import numpy as np

from gmmot import warm_more
from gmmot.compiled import independent_fit
from gmmot.models import DataSource
from gmmot.plots.clouds import raster_data
from gmmot.screens.transport import TransportScreen
from gmmot.server_log import quiet_closed_tabs
from gmmot_runs.barycenter import BarycenterRun, density_grids
from gmmot_runs.coupled_em import CoupledEMRun
from gmmot_runs.descent import DescentRun


def warm_up() -> None:
    """Compile the jitted functions for the default dataset's shapes."""
    src = DataSource()
    clouds = src.clouds()
    for pts in clouds:
        independent_fit(pts, 3)
    run = CoupledEMRun(*clouds)
    run.step()
    TransportScreen(source=lambda: (run.view, run.points0))  # builds a map and draws mu_0
    raster_data(clouds[0], np.zeros(len(clouds[0]), np.int8), 3)  # numba compiles datashader
    DescentRun({"preset": "tutorial two peaks", "res": 64}, n=200).step()
    bary = BarycenterRun()
    density_grids(bary.step())
    bary.set(lambdas=bary.lambdas[::-1])
    bary.step()  # the warm restart


warm_up()
quiet_closed_tabs()
warm_more.start()
