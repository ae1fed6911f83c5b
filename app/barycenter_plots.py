"""Pure plot functions of the barycenter screen: numpy in, Bokeh figures / column data out."""

from __future__ import annotations

import contourpy
import numpy as np
from bokeh.models import ColumnDataSource, LinearColorMapper
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from gmmot_core.figure import ellipse_outlines

__all__ = [
    "contour_data",
    "contour_figure",
    "coupling_data",
    "coupling_figure",
    "support_data",
]

INPUT_COLORS = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def contour_figure() -> tuple[figure, dict[str, ColumnDataSource]]:
    """``-log p`` contours of the inputs and the barycenter (viridis by level), a label
    per mixture, and the barycenter support's 1-sigma ellipses (red)."""
    fig = figure(
        title="inputs and their barycenter: -log density contours",
        width=520,
        height=520,
        match_aspect=True,
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    src = {
        "lines": ColumnDataSource({"xs": [], "ys": [], "color": [], "width": []}),
        "labels": ColumnDataSource({"x": [], "y": [], "text": [], "color": []}),
        "support": ColumnDataSource({"xs": [], "ys": []}),
    }
    fig.multi_line("xs", "ys", source=src["lines"], line_color="color", line_width="width")
    fig.multi_line("xs", "ys", source=src["support"], line_color="#d62728", line_width=1.2)
    fig.text(
        "x",
        "y",
        text="text",
        source=src["labels"],
        text_color="color",
        text_align="center",
        text_baseline="bottom",
        text_font_size="12pt",
        text_font_style="bold",
    )
    return fig, src


def contour_data(
    xs: np.ndarray, ys: np.ndarray, grids: list[np.ndarray], levels: np.ndarray, names: list[str]
) -> tuple[dict, dict]:
    """Contour lines of every grid ``[H, W]`` (rows = y) at ``levels`` (viridis, darker =
    denser; the barycenter's, last, drawn thicker) and a label above each mixture's top."""
    palette = [Viridis256[int(i)] for i in np.linspace(0, 230, len(levels))]
    lines: dict[str, list] = {"xs": [], "ys": [], "color": [], "width": []}
    labels: dict[str, list] = {"x": [], "y": [], "text": [], "color": []}
    for g, (grid, name) in enumerate(zip(grids, names, strict=True)):
        gen = contourpy.contour_generator(xs, ys, grid)
        top = None
        for level, color in zip(levels, palette, strict=True):
            for seg in gen.lines(level):
                lines["xs"].append(seg[:, 0])
                lines["ys"].append(seg[:, 1])
                lines["color"].append(color)
                lines["width"].append(2.2 if g == len(grids) - 1 else 1.4)
                best = seg[np.argmax(seg[:, 1])]
                top = best if top is None or best[1] > top[1] else top
        if top is None:  # flatter than the lowest level: label at the grid's minimum
            i, j = np.unravel_index(np.argmin(grid), grid.shape)
            top = np.array([xs[j], ys[i]])
        labels["x"].append(top[0])
        labels["y"].append(top[1])
        labels["text"].append(name)
        labels["color"].append("#d62728" if g == len(grids) - 1 else INPUT_COLORS[g % 7])
    return lines, labels


def support_data(means: np.ndarray, covs: np.ndarray) -> dict:
    """1-sigma ellipses of the barycenter's support Gaussians."""
    outlines = ellipse_outlines(means, covs, 1.0)
    return {"xs": list(outlines[..., 0]), "ys": list(outlines[..., 1])}


def coupling_figure() -> tuple[figure, ColumnDataSource]:
    """Transport matrices side by side: rows = support Gaussians, columns = the
    components of input 1, then input 2, ...; colour = mass (row-normalised)."""
    fig = figure(
        title="transport matrices (rows: support; columns: input components)",
        height=260,
        sizing_mode="stretch_width",
        min_width=260,
        tools="hover,save",
        tooltips=[("support", "@row"), ("input", "@input"), ("component", "@comp"),
                  ("mass", "@mass{0.000e0}"), ("row share", "@share{0.00}")],
    )  # fmt: skip
    src = ColumnDataSource(
        {"x": [], "y": [], "row": [], "input": [], "comp": [], "mass": [], "share": []}
    )
    mapper = LinearColorMapper(palette=Viridis256, low=0.0, high=1.0)
    fig.rect(
        "x", "y", 1, 1, source=src, fill_color={"field": "share", "transform": mapper},
        line_color=None,
    )  # fmt: skip
    fig.y_range.flipped = True
    fig.xgrid.visible = fig.ygrid.visible = False
    return fig, src


def coupling_data(coupling: np.ndarray) -> dict:
    """``coupling [M, B, K]`` (zero columns = padding, dropped) as heatmap cells."""
    out: dict[str, list] = {k: [] for k in ("x", "y", "row", "input", "comp", "mass", "share")}
    x0 = 0
    for m, p in enumerate(np.asarray(coupling, np.float64)):
        live = np.nonzero(p.sum(0) > 0)[0]
        share = p / np.maximum(p.sum(1, keepdims=True), 1e-300)
        for c, k in enumerate(live):
            for b in range(p.shape[0]):
                out["x"].append(x0 + c)
                out["y"].append(b)
                out["row"].append(b)
                out["input"].append(m + 1)
                out["comp"].append(int(k))
                out["mass"].append(p[b, k])
                out["share"].append(share[b, k])
        x0 += len(live) + 1  # one blank column between inputs
    return out
