"""Point clouds and mixtures: colours by label, ellipses, datashader rasters, the cloud figure.

Pure functions: numpy in, Bokeh figures or column data out; no state, no Panel."""

from __future__ import annotations

import numpy as np
from bokeh.models import ColumnDataSource, HoverTool, LinearColorMapper
from bokeh.plotting import figure

from gmmot_runs.figures import PALETTE, ellipse_outlines

__all__ = [
    "PALETTE",
    "RASTER_SHAPE",
    "RASTER_THRESHOLD",
    "cloud_extent",
    "cloud_figure",
    "colors",
    "ellipse_paths",
    "extent_data",
    "label_column",
    "mixture_data",
    "plane_figure",
    "points_data",
    "raster_data",
    "styled_figure",
]


def colors(labels: np.ndarray) -> list[str]:
    """One palette colour per integer label."""
    return [PALETTE[int(i) % len(PALETTE)] for i in labels]


def ellipse_paths(
    means: np.ndarray, covs: np.ndarray, n_sigma: float, n_vertices: int = 72
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Outlines ``{x : (x - m)^T S^-1 (x - m) = n_sigma^2}`` as per-component x and y arrays."""
    out = ellipse_outlines(means, covs, n_sigma, n_vertices)
    return list(out[..., 0]), list(out[..., 1])


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


def points_data(points: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Column data for a scatter of ``points [N, 2]`` coloured by component ``labels [N]``
    (colours are mapped in the browser, so a label change sends one int8 column)."""
    return {"x": points[:, 0], "y": points[:, 1], "label": label_column(labels)}


def label_column(labels: np.ndarray) -> np.ndarray:
    """Component labels as the int8 column the points' colour mapper reads."""
    return (np.asarray(labels) % len(PALETTE)).astype(np.int8)


RASTER_THRESHOLD = 5_000  # clouds larger than this are drawn as a datashader raster


RASTER_SHAPE = (360, 480)  # (height, width) pixels of that raster


def cloud_extent(points: np.ndarray) -> tuple[float, float, float, float]:
    """``(x0, y0, width, height)`` of the finite points, padded by 5%."""
    pts = points[np.all(np.isfinite(points), axis=1)]
    if len(pts) == 0:
        return -1.0, -1.0, 2.0, 2.0
    lo, hi = pts.min(0), pts.max(0)
    pad = 0.05 * np.maximum(hi - lo, 1e-6)
    lo, hi = lo - pad, hi + pad
    return float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])


def raster_data(points: np.ndarray, labels: np.ndarray, n_labels: int) -> dict[str, list]:
    """Column data for the raster layer: ``points [N, 2]`` aggregated per pixel by label
    (datashader ``count_cat``), shaded with the component colours (RGBA ``uint32``)."""
    import datashader as ds
    import datashader.transfer_functions as tf
    import pandas as pd

    x0, y0, dw, dh = cloud_extent(points)
    ok = np.all(np.isfinite(points), axis=1)
    lab = np.clip(np.asarray(labels, np.int64)[ok], 0, n_labels - 1)
    frame = pd.DataFrame(
        {
            "x": points[ok, 0],
            "y": points[ok, 1],
            "c": pd.Categorical(lab, categories=range(n_labels)),
        }
    )
    h, w = RASTER_SHAPE
    cvs = ds.Canvas(plot_width=w, plot_height=h, x_range=(x0, x0 + dw), y_range=(y0, y0 + dh))
    agg = cvs.points(frame, "x", "y", ds.count_cat("c"))
    key = {i: PALETTE[i % len(PALETTE)] for i in range(n_labels)}
    img = tf.shade(agg, color_key=key, how="eq_hist", min_alpha=90)
    return {"image": [np.asarray(img.data)], "x": [x0], "y": [y0], "dw": [dw], "dh": [dh]}


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
        "points": ColumnDataSource({"x": [], "y": [], "label": []}),
        "sigma1": ColumnDataSource(
            {k: [] for k in ("xs", "ys", "color", "alpha", "weight", "component")}
        ),
        "sigma2": ColumnDataSource(
            {k: [] for k in ("xs", "ys", "color", "alpha", "weight", "component")}
        ),
        "means": ColumnDataSource({k: [] for k in ("x", "y", "color", "weight", "component")}),
        "baseline": ColumnDataSource({"xs": [], "ys": []}),
        "raster": ColumnDataSource({k: [] for k in ("image", "x", "y", "dw", "dh")}),
    }
    # Points (static while EM runs) are glyphs on the primary canvas and alone set the
    # ranges; everything that moves each frame is drawn on the overlay canvas, so a frame
    # repaints only that layer: no re-ranging, no axis re-measuring, no points redrawn.
    img = fig.image_rgba("image", x="x", y="y", dw="dw", dh="dh", source=sources["raster"])
    by_label = LinearColorMapper(palette=PALETTE, low=-0.5, high=len(PALETTE) - 0.5)
    pts = fig.scatter(
        "x",
        "y",
        source=sources["points"],
        color={"field": "label", "transform": by_label},
        size=3,
        alpha=0.35,
    )
    fig.x_range.renderers = fig.y_range.renderers = [img, pts]
    fig.multi_line(
        "xs",
        "ys",
        source=sources["baseline"],
        color="#222222",
        line_width=1.5,
        line_dash="dotted",
        line_alpha=0.8,
        level="overlay",
    )
    fig.multi_line(
        "xs",
        "ys",
        source=sources["sigma2"],
        color="color",
        line_alpha="alpha",
        line_width=1.5,
        line_dash="dashed",
        level="overlay",
    )
    fig.multi_line(
        "xs",
        "ys",
        source=sources["sigma1"],
        color="color",
        line_alpha="alpha",
        line_width=2.5,
        level="overlay",
    )
    r = fig.scatter(
        "x",
        "y",
        source=sources["means"],
        color="color",
        size=11,
        marker="x",
        line_width=3,
        level="overlay",
    )
    fig.add_tools(
        HoverTool(
            renderers=[r], tooltips=[("component", "@component"), ("weight", "@weight{0.000}")]
        )
    )
    return fig, sources


def plane_figure(title: str, width: int, height: int, **kw) -> figure:
    """A fixed-size figure of the plane with equal axes and the zoom tools (the main
    figure of the barycenter, transport and W2-fit screens)."""
    return figure(
        title=title,
        width=width,
        height=height,
        match_aspect=True,
        tools="pan,wheel_zoom,box_zoom,reset,save",
        **kw,
    )


def styled_figure(title: str, **kw) -> figure:
    kw.setdefault("sizing_mode", "stretch_width")
    kw.setdefault("height", 300)
    kw.setdefault("tools", "pan,wheel_zoom,reset,save")
    fig = figure(title=title, toolbar_location="above", **kw)
    fig.toolbar.logo = None
    return fig


def extent_data(*clouds: np.ndarray) -> dict[str, list[float]]:
    """Two corner points spanning all ``clouds`` (the pair figure's range source)."""
    boxes = [cloud_extent(c) for c in clouds]
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return {"x": [x0, x1], "y": [y0, y1]}
