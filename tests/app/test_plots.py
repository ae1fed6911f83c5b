"""Plot helpers: the views keep every value in sight."""

import numpy as np

from app.plots.coupling import fit_mass_axis, mass_curve_data, mass_curve_figure


def test_the_mass_axis_follows_the_total_mass():
    """F = 2.8 (eps = 10) was off the fixed [0, 2] axis; the axis widens to keep F and its
    point on the curve in view, and narrows back."""
    fig, src = mass_curve_figure()
    for total, end in ((0.9, 2.0), (2.8, 4.0), (7.0, 16.0), (1.1, 2.0), (float("nan"), 2.0)):
        src.data = mass_curve_data(total)
        fit_mass_axis(fig, total)
        assert fig.x_range.end == end
        curve = fig.select_one({"name": "curve"}).data_source.data
        assert curve["x"].max() == end and np.all(np.isfinite(curve["y"]))
        if np.isfinite(total):
            assert src.data["x"][0] <= fig.x_range.end


def test_descent_layers_can_be_hidden():
    """Cells, their colours, the Lloyd segments and the Diracs toggle one by one."""
    from app.plots.cells import LAYERS, show_layers, target_figure

    fig, _ = target_figure()
    show_layers(fig, ["Diracs"])
    assert not fig.select_one({"name": "cells"}).visible
    assert not fig.select_one({"name": "segments"}).visible
    assert fig.select_one({"name": "diracs"}).visible
    show_layers(fig, ["cells", "segments to centroids"])
    cells = fig.select_one({"name": "cells"})
    assert cells.visible and cells.glyph.fill_alpha == 0.0  # outlines only, no colours
    show_layers(fig, list(LAYERS))
    assert cells.glyph.fill_alpha > 0 and fig.select_one({"name": "segments"}).visible
