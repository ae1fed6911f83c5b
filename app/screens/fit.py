"""Screen: the two clouds with independently EM-fitted mixtures (1- and 2-sigma ellipses)."""

from __future__ import annotations

import numpy as np
import panel as pn
import param

from app.compiled import IndependentFit, independent_fit
from app.models import DataSource, FitSettings
from app.plots import cloud_figure, mixture_data, points_data


class IndependentFitScreen(pn.viewable.Viewer):
    """Both clouds, each with its own EM fit; refits when data or settings change."""

    data = param.ClassSelector(class_=DataSource)
    fit = param.ClassSelector(class_=FitSettings)
    status = param.String(default="", doc="Last message shown to the user.")

    def __init__(self, **params):
        params.setdefault("data", DataSource())
        params.setdefault("fit", FitSettings())
        super().__init__(**params)
        self._figs = [cloud_figure(f"cloud {i}") for i in (0, 1)]
        self._summary = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._message = pn.pane.Alert("", alert_type="danger", visible=False)
        self._last_good: tuple[tuple[np.ndarray, np.ndarray], list[IndependentFit]] | None = None
        self.data.param.watch(self._refresh, ["preset", "n", "seed"])
        self.fit.param.watch(self._refresh, ["k", "em_steps"])
        self._refresh()

    def _refresh(self, *_events) -> None:
        try:
            clouds = self.data.clouds()
            fits = [
                independent_fit(pts, self.fit.k, self.fit.em_steps, seed=i)
                for i, pts in enumerate(clouds)
            ]
            bad = [i for i, f in enumerate(fits) if not np.all(np.isfinite(f.gmm.covs))]
            if bad:
                raise ValueError(f"EM diverged on cloud {bad[0]} (try a smaller K)")
        except Exception as exc:  # keep the last good state and say why
            self._message.object = f"Could not fit: {exc}. The previous fit is kept."
            self._message.visible = True
            self.status = str(exc)
            return
        self._message.visible = False
        self._last_good = (clouds, fits)
        self._draw(clouds, fits)

    def _draw(self, clouds, fits) -> None:
        rows = []
        with pn.io.hold():
            for (fig, sources), pts, f in zip(self._figs, clouds, fits, strict=True):
                sources["points"].data = points_data(pts, f.labels)
                for name, cols in mixture_data(*f.gmm).items():
                    sources[name].data = cols
                fig.title.text = f"{fig.title.text.split(' ·')[0]} · N={len(pts)}"
        for i, f in enumerate(fits):
            w = ", ".join(f"{x:.3f}" for x in f.gmm.weights)
            rows.append(f"| cloud {i} | {f.log_likelihood:.4f} | {w} |")
        self._summary.object = (
            "| | mean log-likelihood | component weights |\n|---|---|---|\n" + "\n".join(rows)
        )
        self.status = "fitted"

    def sidebar(self) -> list:
        return [
            pn.pane.Markdown("### Data"),
            pn.widgets.Select.from_param(self.data.param.preset, label="Preset"),
            pn.widgets.IntInput.from_param(self.data.param.n, label="Points per cloud"),
            pn.widgets.IntInput.from_param(self.data.param.seed, label="Seed"),
            pn.pane.Markdown("### Independent EM"),
            pn.widgets.IntSlider.from_param(self.fit.param.k, label="Components K"),
            pn.widgets.IntInput.from_param(self.fit.param.em_steps, label="EM iterations"),
        ]

    def __panel__(self):
        return pn.Column(
            self._message,
            pn.Row(
                *(
                    pn.pane.Bokeh(fig, sizing_mode="stretch_both", min_height=380)
                    for fig, _ in self._figs
                ),
                sizing_mode="stretch_both",
            ),
            self._summary,
            sizing_mode="stretch_both",
        )
