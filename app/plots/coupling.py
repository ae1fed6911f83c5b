"""Couplings between mixtures: the pair figure with its links, coupling heatmaps,
reweighting bars, the total-mass curve, transport matrices.

Pure functions: numpy in, Bokeh figures or column data out; no state, no Panel."""

from __future__ import annotations

import math

import numpy as np
from bokeh.models import (
    ColumnDataSource,
    HoverTool,
    Legend,
    LinearColorMapper,
    SingleIntervalTicker,
)
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from gmmot.plots.clouds import colors, ellipse_paths, styled_figure
from gmmot_runs.figures import link_label, link_label_at

__all__ = [
    "coupling_data",
    "coupling_figure",
    "fit_mass_axis",
    "heatmap_data",
    "heatmap_figure",
    "mass_curve_data",
    "mass_curve_figure",
    "numbers_table",
    "pair_data",
    "pair_figure",
    "reweighting_data",
    "reweighting_figure",
]


LINK_COLUMNS = (
    *("x0", "y0", "x1", "y1", "xm", "ym", "width"),
    *("mass", "normalized", "factor", "path", "label"),
)


def pair_figure() -> tuple[figure, dict[str, ColumnDataSource]]:
    """Both mixtures (solid: cloud 0, dashed: cloud 1) and coupling links between means."""
    fig = styled_figure("both mixtures and the coupling", match_aspect=True, height=380)
    src = {
        "ell0": ColumnDataSource({k: [] for k in ("xs", "ys", "color", "alpha")}),
        "ell1": ColumnDataSource({k: [] for k in ("xs", "ys", "color", "alpha")}),
        "links": ColumnDataSource({k: [] for k in LINK_COLUMNS}),
        "means": ColumnDataSource({k: [] for k in ("x", "y", "color", "marker", "label")}),
        "extent": ColumnDataSource({"x": [], "y": []}),
    }
    # as in cloud_figure: an invisible static extent sets the ranges, the rest is overlay
    box = fig.scatter("x", "y", source=src["extent"], alpha=0.0, size=1)
    fig.x_range.renderers = fig.y_range.renderers = [box]
    fig.segment(
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
    # the hover target: the same links, invisible and 16 px wide (a 1 px link was hard to hit)
    links = fig.segment(
        "x0", "y0", "x1", "y1", source=src["links"], line_width=16, line_alpha=0.0, level="overlay"
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
    # each path's growth factor written on its link (paths with LINK_LABEL_SHARE of the
    # mass, the exported figure's rule), drawn last: under the means and ellipses, "×1.00"
    # read like "x00"
    fig.text(
        "xm", "ym", text="label", source=src["links"], text_font_size="9pt",
        text_align="center", text_baseline="middle", text_color="#222222", level="overlay",
        background_fill_color="white", background_fill_alpha=0.8,
    )  # fmt: skip
    fig.add_tools(
        HoverTool(
            renderers=[links],
            tooltips=[
                ("path", "@path"),
                ("mass", "@mass{0.0000}"),
                ("normalised", "@normalized{0.0000}"),
                ("path growth", "×@factor{0.00} (marginal / weight at 0, over that at 1)"),
            ],
        )
    )
    return fig, src


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
    factor = np.asarray(rep.path_factor)[kk, ll]
    at = link_label_at(m0[kk], m1[ll])
    out["links"] = {
        "x0": m0[kk, 0],
        "y0": m0[kk, 1],
        "x1": m1[ll, 0],
        "y1": m1[ll, 1],
        "width": 1.0 + 14.0 * mass / total,
        "mass": mass,
        "normalized": mass / total,
        "factor": factor,
        "path": [f"0:{k} -> 1:{v}" for k, v in zip(kk, ll, strict=True)],
        "xm": at[:, 0],
        "ym": at[:, 1],
        "label": [link_label(f, n) for f, n in zip(factor, mass / total, strict=True)],
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

    fig = styled_figure(
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

    fig = styled_figure(
        "component weight vs coupling marginal",
        height=300,
        tools="save",
        x_range=FactorRange(factors=[]),
    )
    src = ColumnDataSource({k: [] for k in ("x", "weight", "marginal", "factor", "color")})
    bars = fig.vbar(
        x="x",
        top="weight",
        width=0.8,
        source=src,
        fill_color="color",
        fill_alpha=0.25,
        line_color="color",
    )
    marks = fig.scatter(x="x", y="marginal", source=src, marker="diamond", size=14, color="color")
    # above the plot: inside, it covered the tops of the bars
    legend = Legend(
        items=[("component weight", [bars]), ("coupling marginal", [marks])],
        orientation="horizontal",
        label_text_font_size="9pt",
        margin=0,
        padding=2,
    )
    fig.add_layout(legend, "above")
    fig.xaxis.major_label_orientation = 0.8
    fig.add_tools(
        HoverTool(
            tooltips=[
                ("component", "@x"),
                ("weight", "@weight{0.000}"),
                ("coupling marginal", "@marginal{0.000}"),
                ("marginal / weight", "@factor{0.00}"),
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
    fig = styled_figure(
        "total mass F on  F log F - F + 1",
        height=300,
        tools="save",
        x_axis_label="F = coupling mass",
        x_range=(0, 2.0),
    )
    fig.line("x", "y", source=ColumnDataSource(_mass_curve(2.0)), color="#888888", line_width=2,
             name="curve")  # fmt: skip
    src = ColumnDataSource({"x": [], "y": [], "label": []})
    fig.scatter("x", "y", source=src, size=14, color="#d62728")
    fig.text("x", "y", text="label", source=src, x_offset=8, y_offset=-8, text_font_size="10pt")
    return fig, src


def _mass_curve(hi: float) -> dict:
    f = np.linspace(1e-4, hi, 200)
    return {"x": f, "y": f * np.log(f) - f + 1.0}


def mass_curve_data(total_mass: float) -> dict:
    f = max(float(total_mass), 1e-12)
    return {"x": [f], "y": [f * np.log(f) - f + 1.0], "label": [f"F = {f:.4f}"]}


def fit_mass_axis(fig: figure, total_mass: float) -> None:
    """Widen (or narrow back) the F axis of :func:`mass_curve_figure` so that F stays in
    view: [0, 2], or the power of two times 2 above 1.25 F (F = 2.8 at eps = 10 showed
    nowhere on a fixed [0, 2])."""
    f = float(total_mass)
    hi = 2.0 if not np.isfinite(f) or 1.25 * f <= 2.0 else 2.0 ** math.ceil(math.log2(1.25 * f))
    if fig.x_range.end != hi:
        fig.x_range.end = hi
        fig.select_one({"name": "curve"}).data_source.data = _mass_curve(hi)


def numbers_table(rep, balanced: bool) -> str:
    """The coupling's numbers as one Markdown table row (rho, tau, F, MW2², UW2,
    reg_ot_cost, and which OT solver ran, for how long, converged or not)."""
    rho = "∞" if balanced else f"{float(rep.rho):.4g}"
    solver = "Newton" if float(rep.tau) >= 1.0 else "Sinkhorn"
    done = "converged" if bool(rep.converged) else "**not converged**"
    return (
        "| rho | tau | raw coupling mass F | MW2² (normalised) | UW2 | reg_ot_cost "
        "| OT solve |\n|---|---|---|---|---|---|---|\n"
        f"| {rho} | {float(rep.tau):.4f} | {float(rep.total_mass):.4f} | "
        f"{float(rep.mw2):.4f} | {float(rep.uw2):.4f} | {float(rep.reg_ot_cost):.4f} | "
        f"{solver}, {int(rep.n_iters)} it., {done} |"
    )


def coupling_figure() -> tuple[figure, ColumnDataSource]:
    """Transport matrices side by side: rows = support Gaussians, columns = the
    components of input 1, then input 2, ...; colour = mass (row-normalised)."""
    fig = figure(
        title="transport: support (rows) x input components",
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
