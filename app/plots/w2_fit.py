"""The W2 fit's figure: the mixture's raster, the Laguerre cells of the points, the
points, and the ellipses of the W2 fit (solid) and of EM's fit (dashed).

Pure functions: numpy in, Bokeh figures or column data out; no state, no Panel."""

from __future__ import annotations

import numpy as np
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from gmmot.plots.clouds import colors, ellipse_paths, plane_figure

__all__ = ["fit_data", "fit_figure"]

EMPTY = {
    "image": {"image": [np.zeros((2, 2))], "x": [0.0], "y": [0.0], "dw": [1.0], "dh": [1.0]},
    "cells": {"x": [], "y": []},
    "points": {"x": [], "y": []},
    "fit": {"xs": [], "ys": [], "color": []},
    "em": {"xs": [], "ys": []},
}


def fit_figure() -> tuple[figure, dict[str, ColumnDataSource]]:
    """The figure and its sources (``image``, ``cells``, ``points``, ``fit``, ``em``)."""
    # a short title: the plot may be narrow
    fig = plane_figure("density, cells and ellipses (EM dashed)", 560, 540)
    src = {k: ColumnDataSource(v) for k, v in EMPTY.items()}
    fig.image(
        image="image", x="x", y="y", dw="dw", dh="dh", source=src["image"], palette="Greys256"
    )
    fig.line("x", "y", source=src["cells"], color="#1f3b57", line_width=0.5, alpha=0.5)
    fig.scatter("x", "y", source=src["points"], size=3, color="#d62728", alpha=0.7)
    fig.multi_line(
        "xs", "ys", source=src["em"], color="#444444", line_dash="dashed", line_width=1.5
    )
    fig.multi_line("xs", "ys", source=src["fit"], color="color", line_width=2.5)
    return fig, src


def fit_data(view: dict, cells: bool = True, em: bool = True) -> dict[str, dict]:
    """Column data of every source of :func:`fit_figure` for a W2-fit ``view``: the
    raster dark where the mixture is dense, the cells and EM's ellipses if asked."""
    lo, hi = view["box"]
    vals = view["values"]
    fit = _ellipses(view["gmm"])
    ellipses = _ellipses(view["em"]) if em else EMPTY["fit"]
    return {
        "image": {
            "image": [(vals.max() - vals).T],
            "x": [lo[0]],
            "y": [lo[1]],
            "dw": [hi[0] - lo[0]],
            "dh": [hi[1] - lo[1]],
        },
        "cells": _cells(view["cell_vertices"], view["cell_count"]) if cells else EMPTY["cells"],
        "points": {"x": view["points"][:, 0], "y": view["points"][:, 1]},
        "fit": fit,
        "em": {"xs": ellipses["xs"], "ys": ellipses["ys"]},
    }


def _cells(vertices: np.ndarray, count: np.ndarray) -> dict:
    """Every cell outline (``vertices [N, V, 2]``, ``count [N]`` used) as one closed,
    NaN-separated path: one glyph for all cells."""
    gap = np.full((1, 2), np.nan)
    paths = [np.vstack([c[:k], c[:1], gap]) for c, k in zip(vertices, count, strict=True) if k >= 3]
    if not paths:
        return {"x": [], "y": []}
    xy = np.concatenate(paths)
    return {"x": xy[:, 0], "y": xy[:, 1]}


def _ellipses(gmm: dict) -> dict:
    """1- and 2-sigma outlines of ``gmm`` (``means``, ``covs``), one colour per component."""
    xs, ys = [], []
    for n_sigma in (1, 2):
        x, y = ellipse_paths(gmm["means"], gmm["covs"], n_sigma)
        xs += x
        ys += y
    k = len(gmm["weights"])
    return {"xs": xs, "ys": ys, "color": colors(np.arange(k)) * 2}
