"""Pure plotting helpers: numpy in, Bokeh figures / data dicts out. No state, no Panel."""

from __future__ import annotations

import numpy as np
from bokeh.models import ColumnDataSource, HoverTool, LinearColorMapper, SingleIntervalTicker
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from gmmot_runs.figures import ellipse_outlines

PALETTE = Category10_10


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


def _fig(title: str, **kw) -> figure:
    kw.setdefault("sizing_mode", "stretch_width")
    kw.setdefault("height", 300)
    kw.setdefault("tools", "pan,wheel_zoom,reset,save")
    fig = figure(title=title, toolbar_location="above", **kw)
    fig.toolbar.logo = None
    return fig


def pair_figure() -> tuple[figure, dict[str, ColumnDataSource]]:
    """Both mixtures (solid: cloud 0, dashed: cloud 1) and coupling links between means."""
    fig = _fig("both mixtures and the coupling", match_aspect=True, height=380)
    src = {
        "ell0": ColumnDataSource({k: [] for k in ("xs", "ys", "color", "alpha")}),
        "ell1": ColumnDataSource({k: [] for k in ("xs", "ys", "color", "alpha")}),
        "links": ColumnDataSource(
            {
                k: []
                for k in ("x0", "y0", "x1", "y1", "width", "mass", "normalized", "factor", "path")
            }
        ),
        "means": ColumnDataSource({k: [] for k in ("x", "y", "color", "marker", "label")}),
        "extent": ColumnDataSource({"x": [], "y": []}),
    }
    # as in cloud_figure: an invisible static extent sets the ranges, the rest is overlay
    box = fig.scatter("x", "y", source=src["extent"], alpha=0.0, size=1)
    fig.x_range.renderers = fig.y_range.renderers = [box]
    links = fig.segment(
        "x0",
        "y0",
        "x1",
        "y1",
        source=src["links"],
        line_width="width",
        color="#444444",
        alpha=0.55,
        level="overlay",
    )
    fig.multi_line(
        "xs",
        "ys",
        source=src["ell0"],
        color="color",
        line_alpha="alpha",
        line_width=2.5,
        level="overlay",
    )
    fig.multi_line(
        "xs",
        "ys",
        source=src["ell1"],
        color="color",
        line_alpha="alpha",
        line_width=2.5,
        line_dash="dashed",
        level="overlay",
    )
    fig.scatter(
        "x", "y", source=src["means"], color="color", marker="marker", size=10, level="overlay"
    )
    fig.add_tools(
        HoverTool(
            renderers=[links],
            tooltips=[
                ("path", "@path"),
                ("mass", "@mass{0.0000}"),
                ("normalised", "@normalized{0.0000}"),
                ("growth factor", "x@factor{0.00}"),
            ],
        )
    )
    return fig, src


def extent_data(*clouds: np.ndarray) -> dict[str, list[float]]:
    """Two corner points spanning all ``clouds`` (the pair figure's range source)."""
    boxes = [cloud_extent(c) for c in clouds]
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return {"x": [x0, x1], "y": [y0, y1]}


def pair_data(view: dict) -> dict[str, dict]:
    """Column data for :func:`pair_figure` from a runner view."""
    (w0, m0, c0), (w1, m1, c1) = view["gmm0"], view["gmm1"]
    rep = view["report"]
    p = np.asarray(rep.coupling)
    k0, k1 = p.shape
    out = {}
    for name, (w, m, c) in (("ell0", (w0, m0, c0)), ("ell1", (w1, m1, c1))):
        xs, ys = ellipse_paths(m, c, 1.0)
        out[name] = {
            "xs": xs,
            "ys": ys,
            "color": colors(np.arange(len(w))),
            "alpha": 0.35 + 0.65 * w / max(float(w.max()), 1e-12),
        }
    kk, ll = np.meshgrid(np.arange(k0), np.arange(k1), indexing="ij")
    kk, ll = kk.ravel(), ll.ravel()
    mass = p.ravel()
    total = max(float(mass.sum()), 1e-30)
    keep = mass > 1e-4 * total
    kk, ll, mass = kk[keep], ll[keep], mass[keep]
    out["links"] = {
        "x0": m0[kk, 0],
        "y0": m0[kk, 1],
        "x1": m1[ll, 0],
        "y1": m1[ll, 1],
        "width": 1.0 + 14.0 * mass / total,
        "mass": mass,
        "normalized": mass / total,
        "factor": np.asarray(rep.path_factor)[kk, ll],
        "path": [f"{k} -> {v}" for k, v in zip(kk, ll, strict=True)],
    }
    out["means"] = {
        "x": np.concatenate([m0[:, 0], m1[:, 0]]),
        "y": np.concatenate([m0[:, 1], m1[:, 1]]),
        "color": colors(np.arange(k0)) + colors(np.arange(k1)),
        "marker": ["circle"] * k0 + ["square"] * k1,
        "label": [f"0:{k}" for k in range(k0)] + [f"1:{k}" for k in range(k1)],
    }
    return out


def heatmap_figure(title: str) -> tuple[figure, ColumnDataSource]:
    """An annotated K0 x K1 matrix (rows: components of cloud 0, columns: cloud 1)."""
    from bokeh.models import LinearColorMapper
    from bokeh.palettes import Blues256

    fig = _fig(
        title,
        height=300,
        tools="save",
        x_axis_label="cloud 1 component",
        y_axis_label="cloud 0 component",
    )
    src = ColumnDataSource({k: [] for k in ("x", "y", "value", "text", "text_color")})
    mapper = LinearColorMapper(palette=list(reversed(Blues256)), low=0.0, high=1.0)
    fig.rect(
        "x",
        "y",
        1,
        1,
        source=src,
        fill_color={"field": "value", "transform": mapper},
        line_color="white",
    )
    fig.text(
        "x",
        "y",
        text="text",
        source=src,
        text_align="center",
        text_baseline="middle",
        text_font_size="11pt",
        text_color="text_color",
    )
    fig.y_range.flipped = True
    fig.xgrid.visible = fig.ygrid.visible = False
    fig.xaxis.ticker = fig.yaxis.ticker = SingleIntervalTicker(interval=1)
    return fig, src


def heatmap_data(matrix: np.ndarray) -> dict:
    k0, k1 = matrix.shape
    yy, xx = np.meshgrid(np.arange(k0), np.arange(k1), indexing="ij")
    hi = max(float(matrix.max()), 1e-30)
    vals = matrix.ravel()
    return {
        "x": xx.ravel(),
        "y": yy.ravel(),
        "value": vals / hi,
        "text": [f"{v:.3f}" for v in vals],
        "text_color": ["white" if v / hi > 0.55 else "black" for v in vals],
    }


def reweighting_figure() -> tuple[figure, ColumnDataSource]:
    """Component weights vs the coupling's marginals (what the coupling uses of each)."""
    from bokeh.models import FactorRange

    fig = _fig(
        "component weight vs coupling marginal",
        height=300,
        tools="save",
        x_range=FactorRange(factors=[]),
    )
    src = ColumnDataSource({k: [] for k in ("x", "weight", "marginal", "factor", "color")})
    fig.vbar(
        x="x",
        top="weight",
        width=0.8,
        source=src,
        fill_color="color",
        fill_alpha=0.25,
        line_color="color",
        legend_label="component weight",
    )
    fig.scatter(
        x="x",
        y="marginal",
        source=src,
        marker="diamond",
        size=14,
        color="color",
        legend_label="coupling marginal",
    )
    fig.legend.location = "top_left"
    fig.legend.label_text_font_size = "9pt"
    fig.xaxis.major_label_orientation = 0.8
    fig.add_tools(
        HoverTool(
            tooltips=[
                ("component", "@x"),
                ("weight", "@weight{0.000}"),
                ("marginal", "@marginal{0.000}"),
                ("factor", "x@factor{0.00}"),
            ]
        )
    )
    return fig, src


def reweighting_data(view: dict) -> tuple[list[str], dict]:
    rep = view["report"]
    w0, w1 = view["gmm0"][0], view["gmm1"][0]
    k0, k1 = len(w0), len(w1)
    x = [f"0:{k}" for k in range(k0)] + [f"1:{k}" for k in range(k1)]
    return x, {
        "x": x,
        "weight": np.concatenate([w0, w1]),
        "marginal": np.concatenate([np.asarray(rep.row), np.asarray(rep.col)]),
        "factor": np.concatenate([np.asarray(rep.outflow), np.asarray(rep.inflow)]),
        "color": colors(np.arange(k0)) + colors(np.arange(k1)),
    }


def mass_curve_figure() -> tuple[figure, ColumnDataSource]:
    """Total coupling mass F on the curve F log F - F + 1 (the KL cost of creating mass)."""
    fig = _fig(
        "total mass F on  F log F - F + 1",
        height=300,
        tools="save",
        x_axis_label="F = coupling mass",
        x_range=(0, 2.0),
    )
    f = np.linspace(1e-4, 2.0, 200)
    fig.line(f, f * np.log(f) - f + 1.0, color="#888888", line_width=2)
    src = ColumnDataSource({"x": [], "y": [], "label": []})
    fig.scatter("x", "y", source=src, size=14, color="#d62728")
    fig.text("x", "y", text="label", source=src, x_offset=8, y_offset=-8, text_font_size="10pt")
    return fig, src


def mass_curve_data(total_mass: float) -> dict:
    f = max(float(total_mass), 1e-12)
    return {"x": [f], "y": [f * np.log(f) - f + 1.0], "label": [f"F = {f:.4f}"]}


TRACE_COLORS = {"q0": "#1f77b4", "q1": "#ff7f0e", "objective": "#2ca02c", "transport": "#d62728"}


def traces_figures() -> tuple[list[figure], ColumnDataSource]:
    """Two panels sharing x: log-likelihood terms + objective, and the transport term."""
    src = ColumnDataSource({k: [] for k in ("it", "q0", "q1", "objective", "transport")})
    f1 = _fig("Q0, Q1 and objective", height=260, x_axis_label="EM iteration")
    for k in ("q0", "q1", "objective"):
        f1.line("it", k, source=src, color=TRACE_COLORS[k], line_width=2, legend_label=k)
    f1.legend.location = "bottom_right"
    f2 = _fig(
        "transport (reg_ot_cost)", height=260, x_axis_label="EM iteration", x_range=f1.x_range
    )
    f2.line("it", "transport", source=src, color=TRACE_COLORS["transport"], line_width=2)
    return [f1, f2], src


def traces_data(traces, n: int) -> dict:
    n = min(n, len(traces.q0))
    return {
        "it": np.arange(n),
        "q0": traces.q0[:n],
        "q1": traces.q1[:n],
        "objective": traces.objective[:n],
        "transport": traces.transport[:n],
    }
