"""The W2 fit's screen starts at every K of its range: the cold solves of "Prepare this
fit" converge on every preset (its own file: its solver program is not the fit's, so it
need not wait in the fit's group of files)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from gmmot_core import gmm_w2_fit as fit
from gmmot_core.parametrization import to_raw
from gmmot_core.semidiscrete.density import density_from_values
from gmmot_core.semidiscrete.descent import w2_solve
from gmmot_runs.w2_fit import BOUNDS, CLOUDS, K_MAX, cloud_points, em_mixture, fit_inputs


@pytest.mark.slow
def test_prepare_solves_cold_at_every_k_on_every_preset():
    """What "Prepare this fit" solves cold: W2^2 at the kmeans++ start and at EM's fit,
    for K over the screen's whole range on each preset (the screen's defaults: N = 600,
    48^2, seed 3). Both must converge (status 0, finite W2^2). Was: K = 3 on the
    outlier clump stalled at the rounding floor of the masses (1.14e-8 against tol 1e-8)
    or ran out of its 100 iterations; EM's fit at K = 3, seed 2 never converged. One
    solver program for all (the largest of the presets' sizes), and one raster program:
    the mixtures padded to K_MAX inert components, as the fit pads them."""
    with jax.enable_x64(True):
        inputs = {}
        for preset in CLOUDS:
            points = cloud_points(preset, 600, 3)
            inputs[preset] = [fit_inputs(points, None, k, 48, 3) for k in range(1, 9)]
        configs = [c for rows in inputs.values() for _, _, c, _ in rows]
        sizes = configs[0].sizes._replace(
            max_vertices=max(c.sizes.max_vertices for c in configs),
            pieces=max(c.sizes.pieces for c in configs),
            grid=max((c.sizes.grid for c in configs), key=lambda g: (g.cap, g.rescue)),
            ring=max(c.sizes.ring for c in configs),
        )
        assert BOUNDS["k"] == (1, 8)
        failed = []
        for preset, rows in inputs.items():
            for k, (data, n_fit, config, start) in enumerate(rows, 1):
                for name, g in (("start", start), ("EM", em_mixture(data, n_fit, start, 48))):
                    raw = to_raw(fit.to_unit(fit.pad_components(g, K_MAX), data))
                    values, _ = fit.target_values(raw, config)
                    value, status, _, _ = w2_solve(
                        data.points, density_from_values(values), data.nu, sizes=sizes
                    )
                    if int(status) or not np.isfinite(float(value)):
                        failed.append((preset, k, name, fit.describe_status(int(status))))
        assert not failed, failed
