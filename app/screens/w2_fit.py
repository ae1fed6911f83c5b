"""Screen: fitting a GMM to a cloud by the exact semi-discrete W2^2, beside EM's fit.

The run's work (a first compile for a new N, K or resolution takes about a minute on
2 cores, a frame ~0.1-0.3 s) runs off the event loop (:class:`~gmmot.worker.Worker`), so
this and every other session keep answering. One frame at a time: the next starts
when the last one has been drawn.
"""

from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource

from gmmot.compiled import release_if_crowded
from gmmot.knobs import knob_widgets, set_widgets, setting_widgets
from gmmot.plots.traces import trace_data, trace_figure
from gmmot.plots.w2_fit import fit_data, fit_figure
from gmmot.screen import Screen
from gmmot.upload import ChunkedUpload
from gmmot.widgets import LabelledCheckbox
from gmmot_core.io import MAX_BYTES, parse_points
from gmmot_runs.w2_fit import CLOUDS, MAX_POINTS, W2FitKnobs, W2FitRun, W2FitSettings

__all__ = ["W2FitScreen"]

FRAME_MS = 80
UPLOADED = "uploaded CSV"
KEPT = "The previous cloud is kept."


def _new_fit(cloud: dict, k: int, res: int, seed: int) -> tuple[W2FitRun, dict]:
    """A new fit and its first view (in the worker: it may compile ~5,500 memory maps)."""
    release_if_crowded()
    run = W2FitRun(cloud, k, res, seed)
    return run, run.view


def _mass_off(x: float) -> str:
    """The mass off the box, as the raster's quadrature resolves it: below 1e-6 (where a
    sharp component's rounding showed -6.2e-07, a negative mass) it says so."""
    return "< 1e-6" if abs(x) < 1e-6 else f"{x:.2e}"


class W2FitScreen(Screen):
    """One W2 fit per session; frames computed off the event loop."""

    title = "Fit GMM by W2"
    files_stem = "gmmot-w2fit"
    #: two lines a first-time user reads before anything else (the jargon is in ``about``)
    try_first = (
        "Fit a mixture by optimal transport instead of likelihood. Press **Play**: EM "
        "(dashed) bends towards the far clump; the W2 fit keeps its mass on the data."
    )
    about = """
**Fit GMM by W2** fits K Gaussians to a cloud by descending the exact semi-discrete W2²
between the points and the mixture (sdot tutorial's last section; Adam on the mixture's
unconstrained parameters, gradients through every pixel of the mixture's raster). EM's
maximum-likelihood fit from the same kmeans++ start is drawn dashed.
The box around the points is rastered; the fit's objective is W2² to the mixture inside
the box plus the mass it puts outside (charged at the box side squared).
"""

    kind, Knobs, Settings = W2FitRun.kind, W2FitKnobs, W2FitSettings

    def __init__(self, run: W2FitRun | None = None, **params):
        """``run``: a prepared fit to show (a notebook's, on its own points; its settings
        and knobs set the controls); default: none until the tab is first opened."""
        super().__init__(**params)
        self.run: W2FitRun | None = None
        self._view: dict | None = None
        self._uploaded: dict | None = None
        self.make_playback(FRAME_MS)
        self._build()
        if run is not None:
            self._uploaded = run.cloud if "points" in run.cloud else None
            self.w_cloud.value = UPLOADED if self._uploaded else run.cloud["preset"]
            for w, value in ((self.w_k, run.k), (self.w_res, run.res), (self.w_seed, run.seed)):
                w.value = value
            set_widgets(self.knobs, run.knobs.values())
            self._prepared((run, run.view))

    # -- widgets ----------------------------------------------------------------------
    def _build(self) -> None:
        self.settings = setting_widgets(
            self.Settings(), self._warn, options={"preset": [*CLOUDS, UPLOADED]}
        )
        st = self.settings
        self.w_cloud, self.w_n, self.w_k = st["preset"], st["n"], st["k"]
        self.w_res, self.w_seed = st["res"], st["seed"]
        self.w_upload = ChunkedUpload(
            label="cloud (CSV/TSV/NPY: x, y[, weight])", max_bytes=MAX_BYTES, notice=self.notice
        )
        self.knobs = knob_widgets(self.Knobs())
        self.w_lr, self.w_steps = self.knobs["learning_rate"], self.knobs["steps_per_frame"]
        self.w_cells = LabelledCheckbox(label="show Laguerre cells", value=True)
        self.w_em = LabelledCheckbox(label="show EM's fit (dashed)", value=True)
        self.b_start = pn.widgets.Button(label="Prepare this fit", color="primary")
        self.make_controls(disabled=True)  # until a fit is prepared
        self.counter = pn.pane.Markdown(
            "Press **Prepare this fit** (the first time for a size takes about a minute)."
        )
        self.fig, self.src = fit_figure()
        self.w2_fig, self.w2_src = trace_figure("objective (EM dashed)", "W2² + side² x mass off")
        self.em_src = ColumnDataSource({"step": [], "value": []})
        self.w2_fig.line("step", "value", source=self.em_src, color="#444444", line_dash="dashed")
        self.table = pn.pane.Markdown("")
        self.downloads = self.downloads_for(self.run_files())
        self.b_start.on_click(self.prepare)
        self.watch_upload(self.w_upload, "File", KEPT, self.upload)
        for w in (self.w_cells, self.w_em):
            w.param.watch(lambda _e: self._draw(), "value")
        # a committed N, K, raster or seed (Enter, or leaving the box) prepares that fit,
        # as a slider acts on the other tabs (it did nothing until Prepare was pressed)
        for w in (self.w_n, self.w_k, self.w_res, self.w_seed):
            w.param.watch(self._on_shape, "value")
        self.announce([self.b_start, self.w_n, self.w_k, self.w_res, self.w_seed])

    def _on_shape(self, _event=None) -> None:
        if self.run is not None:  # before the tab is first opened, opening prepares
            self.prepare()

    # -- work off the loop --------------------------------------------------------------
    def _cloud(self) -> dict:
        if self.w_cloud.value == UPLOADED:
            if self._uploaded is None:
                raise ValueError("upload a CSV first")
            return self._uploaded
        return {
            "preset": self.w_cloud.value,
            "n": int(self.w_n.value),
            "seed": int(self.w_seed.value),
        }

    def prepare(self, _event=None) -> None:
        self._pause()
        try:
            cloud = self._cloud()
        except ValueError as exc:
            self._warn(f"Could not start that fit: {exc}.")
            return
        k, res, seed = int(self.w_k.value), int(self.w_res.value), int(self.w_seed.value)
        n = len(cloud["points"]) if "points" in cloud else cloud["n"]
        self._mark_stale()
        self.submit_run(
            f"preparing the W2 fit for N = {n}, K = {k}, {res}² (a new size compiles first)",
            lambda: _new_fit(cloud, k, res, seed),
            self._prepared,
            "Could not start that fit",
            kept="The previous fit is kept.",
        )

    def _prepared(self, run_view: tuple) -> None:
        run, self._view = run_view
        self.run = run
        self._clear()
        for b in (self.b_play, self.b_step, self.b_reset):
            b.disabled = False
        self._draw()

    def _failed(self, text: str) -> None:
        super()._failed(text)
        self._draw()

    def _tick(self, clicked: bool = False) -> None:
        run = self.run
        if run is None or (self.busy and not clicked):  # a Step click is queued, not dropped
            return
        self.submit_frame(
            f"{self.w_steps.value} Adam steps",
            self.step_job(run),
            self._show_view,
            "The step failed: {exc}. The last good fit is kept.",
        )

    def _show_view(self, view: dict) -> None:
        self._view = view
        self._draw()

    reset_label = "back to the kmeans++ start"

    def _show_reset(self, view: dict) -> None:
        self._show_view(view)

    # -- uploads ----------------------------------------------------------------------
    def upload(self, raw: bytes, name: str = "") -> None:
        """A cloud's file (CSV / TSV / NPY: x, y[, weight]) as the cloud to fit, read in
        the worker; a file that cannot be read is refused and the cloud kept."""

        def read() -> tuple:
            pts, w, note = parse_points(raw, name)
            if len(pts) > MAX_POINTS:
                raise ValueError(f"{len(pts)} points; the W2 fit takes at most {MAX_POINTS}")
            cloud = {"points": pts.astype(np.float64).tolist()} | (
                {} if w is None else {"weights": w.astype(np.float64).tolist()}
            )
            return cloud, note + ("" if w is not None else ", no weight column")

        def use(read_back: tuple) -> None:
            self._uploaded, note = read_back
            self.w_cloud.value = UPLOADED
            self._inform(f"{name}: {note}. Press Prepare this fit.")

        self.read_upload(self.w_upload, "File", KEPT, name, read, use)

    # -- drawing ----------------------------------------------------------------------
    def _mark_stale(self) -> None:
        if self.run is not None:
            self.counter.object = "*(stale: a new fit is being prepared)* " + self.counter.object

    def _draw(self) -> None:
        """Draw the last view (computed in the worker with its frame)."""
        if self._view is None:
            return
        v = self._view
        with pn.io.hold():
            for name, data in fit_data(v, self.w_cells.value, self.w_em.value).items():
                self.src[name].data = data
            obj = v["objective"]
            self.w2_src.data = trace_data(obj) if len(obj) else {"step": [], "value": []}
            steps = max(len(obj) - 1, 1)
            self.em_src.data = {"step": [0, steps], "value": [v["em_objective"]] * 2}
        w2 = f"{v['w2'][-1]:.5g}" if len(v["w2"]) else "(after the first step)"
        self.counter.object = f"**step** {v['step']} · **N** {len(v['points'])} · **W2²** {w2}"
        # before the first step the fit has no value yet (its trace is of the steps)
        later = "(after the first step)"
        off = _mass_off(v["outside"][-1]) if len(v["outside"]) else later
        obj = f"{v['objective'][-1]:.5g}" if len(v["objective"]) else later
        self.table.object = (
            "| | W2 fit | EM |\n|---|---|---|\n"
            f"| objective (W2² + side² x mass off) | {obj} | {v['em_objective']:.5g} |\n"
            f"| W2² to the mixture in the box | {w2} | {v['em_w2']:.5g} |\n"
            f"| mass off the box | {off} | {_mass_off(v['em_outside'])} |\n"
            f"| mean log-likelihood | {v['log_likelihood']:.4f} | {v['em_log_likelihood']:.4f} |"
        )
        if v["message"]:
            self._warn(f"Step {v['step']}: {v['message']}")

    # -- exports ----------------------------------------------------------------------
    def exported_run(self) -> W2FitRun:
        if self.run is None:
            raise ValueError("prepare a fit first")
        return self.run

    def shown_view(self) -> dict | None:
        return self._view

    def opened(self) -> None:
        """The tab was opened: prepare the default fit the first time."""
        if self.run is None and not self.busy:
            self.prepare()

    # -- layout -----------------------------------------------------------------------
    def sidebar(self) -> list:
        return [
            pn.pane.Markdown("### Data and mixture"),
            self.w_cloud,
            self.w_upload,
            self.w_n,
            self.w_k,
            self.w_res,
            self.w_seed,
            self.b_start,
            pn.pane.Markdown("### Run"),
            self.controls,
            self.w_lr,
            self.w_steps,
            self.w_cells,
            self.w_em,
            *self.export_section(),
        ]

    def __panel__(self):
        return self.main_column(
            self.counter,
            self.figure_row(self.fig, self.w2_fig, self.table),
        )
