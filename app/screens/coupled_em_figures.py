"""The coupled-EM screen's figures, and how a view of the run is drawn on them.

Per frame the mixtures, the points' labels and the pair view; the slower-moving
summaries (heatmaps, reweighting, mass curve, traces, numbers) at most
``1 / SUMMARY_PERIOD_S`` times a second while playing."""

from __future__ import annotations

import time

import numpy as np
import panel as pn

from gmmot.plots.clouds import (
    RASTER_THRESHOLD,
    cloud_figure,
    ellipse_paths,
    extent_data,
    label_column,
    mixture_data,
    points_data,
    raster_data,
)
from gmmot.plots.coupling import (
    fit_mass_axis,
    heatmap_data,
    heatmap_figure,
    mass_curve_data,
    mass_curve_figure,
    numbers_table,
    pair_data,
    pair_figure,
    reweighting_data,
    reweighting_figure,
)
from gmmot.plots.traces import traces_data, traces_figures

__all__ = ["SUMMARY_PERIOD_S", "CoupledEMFigures"]

SUMMARY_PERIOD_S = 0.25  # while playing, the summary views refresh at most 4 times a second


class CoupledEMFigures:
    """Both clouds with their mixtures, the coupled pair, the coupling heatmaps, the
    reweighting, the mass curve, the traces and the numbers table of one session."""

    def __init__(self):
        self.clouds = [cloud_figure(f"cloud {i}") for i in (0, 1)]
        self.pair = pair_figure()
        self.heat_raw = heatmap_figure("coupling (raw mass)")
        self.heat_norm = heatmap_figure("coupling (normalised)")
        self.reweight = reweighting_figure()
        self.mass = mass_curve_figure()
        self.traces, self.trace_src = traces_figures()
        self.numbers = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._last_labels: list[np.ndarray | None] = [None, None]
        self._summary_at = 0.0

    def draw(self, view: dict, clouds, balanced: bool, full: bool, playing: bool) -> bool:
        """Draw ``view`` of the run on ``clouds`` (two ``[N, 2]``); the summaries too when
        ``full``, when not ``playing`` or when their period has passed (returned).
        Rasters (clouds above ``RASTER_THRESHOLD`` points) are recoloured with them."""
        now = time.monotonic()
        summary = full or not playing or now - self._summary_at >= SUMMARY_PERIOD_S
        with pn.io.hold():
            for i, ((_, src), pts) in enumerate(zip(self.clouds, clouds, strict=True)):
                gmm = view[f"gmm{i}"]
                labels = view.get(f"labels{i}")
                last = self._last_labels[i]
                changed = labels is not None and (last is None or not np.array_equal(labels, last))
                big = len(pts) > RASTER_THRESHOLD
                if full or (changed and (summary or not big)):
                    lab = np.zeros(len(pts), np.int8) if labels is None else labels
                    if big:
                        src["points"].data = points_data(pts[:0], lab[:0])
                        src["raster"].data = raster_data(pts, lab, len(gmm[0]))
                    elif full or len(src["points"].data["x"]) != len(pts):
                        src["raster"].data = {k: [] for k in src["raster"].data}
                        src["points"].data = points_data(pts, lab)
                    else:  # only the labels moved: send one int8 column
                        src["points"].data["label"] = label_column(lab)
                    self._last_labels[i] = labels
                for name, cols in mixture_data(*gmm).items():
                    src[name].data = cols
            if full:
                self.pair[1]["extent"].data = extent_data(*clouds)
            for name, cols in pair_data(view).items():
                self.pair[1][name].data = cols
            if summary:
                self._summary_at = now
                self.draw_summary(view, balanced)
        return summary

    def draw_summary(self, view: dict, balanced: bool) -> None:
        """The slower-moving views: heatmaps, reweighting, mass curve, traces, numbers."""
        rep = view["report"]
        with pn.io.hold():
            self.heat_raw[1].data = heatmap_data(np.asarray(rep.coupling))
            self.heat_norm[1].data = heatmap_data(np.asarray(rep.normalized))
            factors, cols = reweighting_data(view)
            if list(self.reweight[0].x_range.factors) != list(factors):
                self.reweight[0].x_range.factors = factors
            self.reweight[1].data = cols
            self.mass[1].data = mass_curve_data(float(rep.total_mass))
            fit_mass_axis(self.mass[0], float(rep.total_mass))
            self.trace_src.data = traces_data(view["traces"], int(view["iteration"]))
        self.numbers.object = numbers_table(rep, balanced)

    def draw_baseline(self, gmms: list | None) -> None:
        """The independent EM fits (dotted, 1 sigma) of both clouds, or none."""
        for i, (_, src) in enumerate(self.clouds):
            if gmms is None:
                src["baseline"].data = {"xs": [], "ys": []}
            else:
                xs, ys = ellipse_paths(gmms[i].means, gmms[i].covs, 1.0)
                src["baseline"].data = {"xs": xs, "ys": ys}

    def panels(self) -> list:
        """The screen's main area below its notices: clouds, pair and heatmaps, numbers,
        reweighting and mass, traces."""
        wide = {"sizing_mode": "stretch_width"}
        return [
            pn.Row(*(pn.pane.Bokeh(f, height=380, **wide) for f, _ in self.clouds), **wide),
            pn.Row(
                pn.pane.Bokeh(self.pair[0], **wide),
                pn.Column(
                    pn.pane.Bokeh(self.heat_raw[0], **wide),
                    pn.pane.Bokeh(self.heat_norm[0], **wide),
                    **wide,
                ),
                **wide,
            ),
            self.numbers,
            pn.Row(
                pn.pane.Bokeh(self.reweight[0], **wide), pn.pane.Bokeh(self.mass[0], **wide), **wide
            ),
            pn.Row(*(pn.pane.Bokeh(f, **wide) for f in self.traces), **wide),
        ]
