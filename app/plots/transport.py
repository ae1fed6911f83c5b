"""The transport map's figure: arrows x -> T(x), the two fitted mixtures (dashed), the
contours and ellipses of the interpolation mu_t, the points carried along.

Pure functions: numpy in, Bokeh figures or column data out; no state, no Panel."""

from __future__ import annotations

import numpy as np
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from gmmot.plots.clouds import plane_figure
from gmmot_core.mixture import GMM
from gmmot_runs.figures import PALETTE, ellipse_outlines

__all__ = ["ends_data", "map_figure", "mixture_ellipses"]


def map_figure() -> tuple[figure, dict[str, ColumnDataSource], object]:
    """The figure, its sources (``arrows``, ``ends``, ``lines``, ``labels``, ``mu``,
    ``points``) and the arrows' renderer (shown or hidden by the screen)."""
    fig = plane_figure("GMM-OT map and displacement interpolation mu_t", 620, 560)
    src = {
        k: ColumnDataSource(v)
        for k, v in {
            "arrows": {"x0": [], "y0": [], "x1": [], "y1": []},
            "ends": {"xs": [], "ys": [], "dash": [], "color": []},
            "lines": {"xs": [], "ys": [], "color": [], "width": []},
            "labels": {"x": [], "y": [], "text": [], "color": []},
            "mu": {"xs": [], "ys": [], "alpha": []},
            "points": {"x": [], "y": []},
        }.items()
    }
    arrows = fig.segment("x0", "y0", "x1", "y1", source=src["arrows"], color="#999999", alpha=0.5)
    fig.multi_line("xs", "ys", source=src["ends"], line_color="color", line_dash="dash", alpha=0.8)
    fig.multi_line("xs", "ys", source=src["lines"], line_color="color", line_width="width")
    fig.multi_line(
        "xs", "ys", source=src["mu"], line_color="#d62728", line_alpha="alpha", line_width=2
    )
    fig.scatter("x", "y", source=src["points"], size=4, color="#ff7f0e")
    return fig, src, arrows


def mixture_ellipses(gmm: GMM, min_weight: float = 1e-4) -> dict:
    """1-sigma outlines of the components above ``min_weight``, opacity by weight."""
    w = np.asarray(gmm.weights, np.float64)
    keep = np.nonzero(w > min_weight)[0]
    out = ellipse_outlines(np.asarray(gmm.means)[keep], np.asarray(gmm.covs)[keep], 1.0)
    alpha = 0.25 + 0.75 * w[keep] / max(w.max(), 1e-12)
    return {"xs": list(out[..., 0]), "ys": list(out[..., 1]), "alpha": alpha}


def ends_data(g0: GMM, g1: GMM) -> dict:
    """The two ends of the interpolation, dashed: ``g0`` blue, ``g1`` green."""
    ends: dict[str, list] = {"xs": [], "ys": [], "dash": [], "color": []}
    for g, color in ((g0, PALETTE[0]), (g1, PALETTE[2])):
        e = mixture_ellipses(g)
        ends["xs"] += e["xs"]
        ends["ys"] += e["ys"]
        ends["color"] += [color] * len(e["xs"])
        ends["dash"] += ["dashed"] * len(e["xs"])
    return ends
