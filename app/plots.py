"""Pure plotting helpers: numpy in, Bokeh figures / data dicts out. No state, no Panel."""

from __future__ import annotations

import numpy as np
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

PALETTE = Category10_10


def colors(labels: np.ndarray) -> list[str]:
    """One palette colour per integer label."""
    return [PALETTE[int(i) % len(PALETTE)] for i in labels]


def ellipse_paths(
    means: np.ndarray, covs: np.ndarray, n_sigma: float, n_vertices: int = 72
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Outlines ``{x : (x - m)^T S^-1 (x - m) = n_sigma^2}`` as per-component x and y arrays."""
    t = np.linspace(0.0, 2.0 * np.pi, n_vertices)
    circle = np.stack([np.cos(t), np.sin(t)])  # [2, V]
    xs, ys = [], []
    for m, c in zip(means, covs, strict=True):
        vals, vecs = np.linalg.eigh(0.5 * (c + c.T))
        pts = m[:, None] + n_sigma * (vecs * np.sqrt(np.maximum(vals, 0.0))) @ circle
        xs.append(pts[0])
        ys.append(pts[1])
    return xs, ys


def mixture_data(weights: np.ndarray, means: np.ndarray, covs: np.ndarray) -> dict[str, dict]:
    """Column data for the ellipse and mean layers of one mixture."""
    k = len(weights)
    alpha = 0.35 + 0.65 * weights / max(float(np.max(weights)), 1e-12)
    out = {}
    for n_sigma in (1, 2):
        xs, ys = ellipse_paths(means, covs, n_sigma)
        out[f"sigma{n_sigma}"] = {
            "xs": xs,
            "ys": ys,
            "color": colors(np.arange(k)),
            "alpha": alpha,
            "weight": weights,
            "component": np.arange(k),
        }
    out["means"] = {
        "x": means[:, 0],
        "y": means[:, 1],
        "color": colors(np.arange(k)),
        "weight": weights,
        "component": np.arange(k),
    }
    return out


def points_data(points: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray | list]:
    """Column data for a scatter of ``points [N, 2]`` coloured by component ``labels [N]``."""
    return {"x": points[:, 0], "y": points[:, 1], "color": colors(labels)}


def cloud_figure(title: str) -> tuple[figure, dict[str, ColumnDataSource]]:
    """An empty cloud-with-ellipses figure and its data sources (filled in place later)."""
    fig = figure(
        title=title,
        match_aspect=True,
        sizing_mode="stretch_both",
        min_height=360,
        tools="pan,wheel_zoom,box_zoom,reset,save",
        toolbar_location="above",
    )
    fig.toolbar.logo = None
    sources = {
        "points": ColumnDataSource({"x": [], "y": [], "color": []}),
        "sigma1": ColumnDataSource(
            {k: [] for k in ("xs", "ys", "color", "alpha", "weight", "component")}
        ),
        "sigma2": ColumnDataSource(
            {k: [] for k in ("xs", "ys", "color", "alpha", "weight", "component")}
        ),
        "means": ColumnDataSource({k: [] for k in ("x", "y", "color", "weight", "component")}),
    }
    fig.scatter("x", "y", source=sources["points"], color="color", size=3, alpha=0.35)
    fig.multi_line(
        "xs",
        "ys",
        source=sources["sigma2"],
        color="color",
        line_alpha="alpha",
        line_width=1.5,
        line_dash="dashed",
    )
    fig.multi_line(
        "xs", "ys", source=sources["sigma1"], color="color", line_alpha="alpha", line_width=2.5
    )
    r = fig.scatter(
        "x", "y", source=sources["means"], color="color", size=11, marker="x", line_width=3
    )
    fig.add_tools(
        HoverTool(
            renderers=[r], tooltips=[("component", "@component"), ("weight", "@weight{0.000}")]
        )
    )
    return fig, sources
