"""Density contours: -log density contour lines with placed labels, input colours, support ellipses.

Pure functions: numpy in, Bokeh figures or column data out; no state, no Panel."""

from __future__ import annotations

import contourpy
import numpy as np
from bokeh.models import ColumnDataSource
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from gmmot.plots.clouds import plane_figure
from gmmot_runs.figures import PALETTE, ellipse_outlines

__all__ = [
    "INPUT_COLORS",
    "LABEL_CHAR",
    "LABEL_HEIGHT",
    "contour_data",
    "contour_figure",
    "contour_lines",
    "grid_extent",
    "grid_minima",
    "label_colors",
    "merge_lines",
    "place_labels",
    "support_data",
]


INPUT_COLORS = tuple(PALETTE[i] for i in (0, 2, 4, 5, 6, 9, 8))  # no orange / red: the barycenter


def contour_figure() -> tuple[figure, dict[str, ColumnDataSource]]:
    """``-log p`` contours of the inputs and the barycenter (viridis by level), a label
    per mixture, and the barycenter support's 1-sigma ellipses (red)."""
    fig = plane_figure("inputs and their barycenter: -log density contours", 520, 520)
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


def contour_lines(
    xs: np.ndarray, ys: np.ndarray, grid: np.ndarray, levels: np.ndarray, width: float = 1.4
) -> dict:
    """Contour lines of ``grid [H, W]`` (rows = y) at ``levels``, viridis by level (darker
    = denser), as multi-line columns."""
    palette = [Viridis256[int(i)] for i in np.linspace(0, 230, len(levels))]
    gen = contourpy.contour_generator(xs, ys, grid)
    lines: dict[str, list] = {"xs": [], "ys": [], "color": [], "width": []}
    for level, color in zip(levels, palette, strict=True):
        for seg in gen.lines(level):
            lines["xs"].append(seg[:, 0])
            lines["ys"].append(seg[:, 1])
            lines["color"].append(color)
            lines["width"].append(width)
    return lines


LABEL_CHAR = 0.02  # width of one 12pt bold character / plot width (520 px)


LABEL_HEIGHT = 0.045  # height of a label / plot height


def place_labels(
    lines: list[dict], names: list[str], colors: list[str], extent: tuple, fallback: list
) -> dict:
    """One label per mixture, outside its outermost contour, where it covers neither an
    earlier label nor another mixture's lines: the first free spot of above, below,
    right and left of the contours' box (else the least covered one).

    ``lines`` are :func:`contour_lines` outputs, ``extent = (x0, x1, y0, y1)`` the plot's
    range, ``fallback [M, 2]`` where to put a label of a mixture without contours."""
    x0, x1, y0, y1 = extent
    h = LABEL_HEIGHT * (y1 - y0)
    verts = [
        np.concatenate([np.column_stack(p) for p in zip(ln["xs"], ln["ys"], strict=True)])
        if ln["xs"]
        else np.zeros((0, 2))
        for ln in lines
    ]
    placed: list[tuple] = []
    out: dict[str, list] = {"x": [], "y": [], "text": [], "color": []}
    for g, (name, color) in enumerate(zip(names, colors, strict=True)):
        w = LABEL_CHAR * len(name) * (x1 - x0)
        if len(verts[g]):
            (bx0, by0), (bx1, by1) = verts[g].min(0), verts[g].max(0)
        else:
            (bx0, by0), (bx1, by1) = fallback[g], fallback[g]
        cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2
        spots = [
            (cx, by1),
            (cx, by0 - h),
            (bx1 + 0.55 * w, cy - h / 2),
            (bx0 - 0.55 * w, cy - h / 2),
        ]
        others = np.concatenate([v for i, v in enumerate(verts) if i != g] or [np.zeros((0, 2))])

        def cost(x, y, w=w, others=others):
            box = (x - w / 2, x + w / 2, y, y + h)
            hit = np.sum(
                (others[:, 0] > box[0]) & (others[:, 0] < box[1])
                & (others[:, 1] > box[2]) & (others[:, 1] < box[3])
            )  # fmt: skip
            overlap = sum(
                max(0.0, min(box[1], p[1]) - max(box[0], p[0]))
                * max(0.0, min(box[3], p[3]) - max(box[2], p[2]))
                for p in placed
            )
            outside = box[0] < x0 or box[1] > x1 or box[2] < y0 or box[3] > y1
            return (overlap > 0) * 1e6 + hit + outside * 1e3

        x, y = min(spots, key=lambda s: cost(*s))  # min keeps the first of equal costs
        placed.append((x - w / 2, x + w / 2, y, y + h))
        out["x"].append(x)
        out["y"].append(y)
        out["text"].append(name)
        out["color"].append(color)
    return out


def contour_data(
    xs: np.ndarray, ys: np.ndarray, grids: list[np.ndarray], levels: np.ndarray, names: list[str]
) -> tuple[dict, dict]:
    """Contour lines of every grid ``[H, W]`` (the last, the barycenter's, thicker and
    labelled in red) and a label per mixture (:func:`place_labels`)."""
    lines = [
        contour_lines(xs, ys, grid, levels, 2.2 if g == len(grids) - 1 else 1.4)
        for g, grid in enumerate(grids)
    ]
    return merge_lines(lines), place_labels(
        lines, names, label_colors(len(grids)), grid_extent(xs, ys), grid_minima(xs, ys, grids)
    )


def merge_lines(lines: list[dict]) -> dict:
    """Several :func:`contour_lines` outputs as one set of multi-line columns."""
    return {k: [v for ln in lines for v in ln[k]] for k in ("xs", "ys", "color", "width")}


def label_colors(n: int) -> list[str]:
    """Inputs in the input colours, the last (the barycenter) in red."""
    return [INPUT_COLORS[g % 7] for g in range(n - 1)] + ["#d62728"]


def grid_extent(xs: np.ndarray, ys: np.ndarray) -> tuple:
    return float(xs[0]), float(xs[-1]), float(ys[0]), float(ys[-1])


def grid_minima(xs: np.ndarray, ys: np.ndarray, grids: list[np.ndarray]) -> list:
    """Where each grid ``[H, W]`` is lowest (the densest point), ``[x, y]`` each."""
    out = []
    for grid in grids:
        i, j = np.unravel_index(np.argmin(grid), grid.shape)
        out.append(np.array([xs[j], ys[i]]))
    return out


def support_data(means: np.ndarray, covs: np.ndarray) -> dict:
    """1-sigma ellipses of the barycenter's support Gaussians."""
    outlines = ellipse_outlines(means, covs, 1.0)
    return {"xs": list(outlines[..., 0]), "ys": list(outlines[..., 1])}
