"""Laguerre cells over a target picture: the image, the cells as NaN-separated patches
per colour, the Diracs.

Pure functions: numpy in, Bokeh figures or column data out; no state, no Panel."""

from __future__ import annotations

import numpy as np
from bokeh.models import ColumnDataSource
from bokeh.palettes import Category20_20
from bokeh.plotting import figure

from gmmot_runs.descent import target_extent

__all__ = ["LAYERS", "cells_data", "diracs_data", "image_data", "show_layers", "target_figure"]


def target_figure() -> tuple[figure, dict[str, ColumnDataSource]]:
    """Target image, Laguerre cells (patches coloured like their Diracs), Diracs and
    arrows to their cell centroids, on [0, 1]^2 with equal axes (a target that is not
    square fills it along its longer side)."""
    fig = figure(
        title="target, Laguerre cells, Diracs -> centroids",
        x_range=(0, 1),
        y_range=(0, 1),
        match_aspect=True,
        width=540,
        height=520,
        tools="pan,wheel_zoom,box_zoom,reset,hover,save",
        tooltips=[("Dirac", "@i"), ("mass error", "@err{0.00e0}")],
    )
    src = {
        "image": ColumnDataSource({"image": [np.zeros((2, 2))], "dw": [1.0], "dh": [1.0]}),
        "cells": ColumnDataSource({"xs": [], "ys": [], "color": []}),
        "diracs": ColumnDataSource(
            {"x": [], "y": [], "bx": [], "by": [], "i": [], "err": [], "color": []}
        ),
    }
    fig.image(
        image="image",
        x=0,
        y=0,
        dw="dw",
        dh="dh",
        source=src["image"],
        palette="Greys256",
        alpha=0.9,
    )
    fig.patches(
        "xs",
        "ys",
        source=src["cells"],
        fill_color="color",
        fill_alpha=0.18,
        line_color="#1f3b57",
        line_width=0.7,
        name="cells",
    )
    fig.segment(
        "x", "y", "bx", "by", source=src["diracs"], color="#d62728", line_width=1, name="segments"
    )
    dots = fig.scatter(
        "x", "y", source=src["diracs"], size=4, color="color", line_color="#222", name="diracs"
    )
    fig.hover.renderers = [dots]
    return fig, src


LAYERS = ("cells", "cell colours", "segments to centroids", "Diracs")


def show_layers(fig: figure, shown: list[str]) -> None:
    """Show only the :data:`LAYERS` in ``shown`` (at N = 2000 the full view is dense)."""
    cells = fig.select_one({"name": "cells"})
    cells.visible = "cells" in shown
    cells.glyph.fill_alpha = 0.18 if "cell colours" in shown else 0.0
    fig.select_one({"name": "segments"}).visible = "segments to centroids" in shown
    fig.select_one({"name": "diracs"}).visible = "Diracs" in shown


def image_data(values: np.ndarray) -> dict:
    """``values [W, H]`` (axis 0 = x) as a Bokeh image (rows = y), dark = dense, over the
    target's rectangle (:func:`~gmmot_runs.descent.target_extent`)."""
    v = np.asarray(values, np.float64)
    sx, sy = target_extent(v)
    return {"image": [(v.max() - v).T], "dw": [sx], "dh": [sy]}


def _colors(n: int) -> list[str]:
    return [Category20_20[i % 20] for i in range(n)]


def cells_data(cells) -> dict:
    """The non-empty cells of a :class:`~gmmot_core.semidiscrete.cells.Cells` as one patch per
    colour: cell ``i`` takes its Dirac's colour ``i % 20`` and the cells of a colour are
    NaN-separated parts of one patch (disjoint, so each is filled). Twenty patches
    instead of N: a frame sends 40 arrays, not 2N, and the browser fills 20 paths
    (Lloyd at N = 1000 on 256^2 in chromium: 2.3 steps a second before; 9.8 with the
    cells not updated at all, 9.6 with these, both at the screen's 10 Hz clock then)."""
    verts, count = np.asarray(cells.vertices, np.float64), np.asarray(cells.count)
    n, v = count.shape[0], verts.shape[1]
    idx = np.arange(v + 1)[None, :]
    # each polygon followed by one NaN: [N, V + 1] slots, the used ones kept in order
    padded = np.concatenate([verts, np.zeros((n, 1, 2))], 1)
    padded[np.broadcast_to(idx >= count[:, None], (n, v + 1))] = np.nan
    used = idx <= count[:, None]
    xs, ys, colors = [], [], []
    for c in range(min(n, 20)):
        rows = np.arange(c, n, 20)
        rows = rows[count[rows] >= 3]
        if not len(rows):
            continue
        pick = used[rows]
        xs.append(padded[rows, :, 0][pick][:-1])  # no NaN after the last polygon
        ys.append(padded[rows, :, 1][pick][:-1])
        colors.append(Category20_20[c])
    return {"xs": xs, "ys": ys, "color": colors}


def diracs_data(positions: np.ndarray, barycenters: np.ndarray, masses: np.ndarray) -> dict:
    """Diracs, their centroids (arrow ends) and relative cell-mass error ``N m_i - 1``."""
    n = len(positions)
    return {
        "x": positions[:, 0],
        "y": positions[:, 1],
        "bx": barycenters[:, 0],
        "by": barycenters[:, 1],
        "i": np.arange(n),
        "err": n * np.asarray(masses) - 1.0,
        "color": _colors(n),
    }
