"""Screen: Dirac gradient descent / Lloyd towards a target image through exact Laguerre cells."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import panel as pn

from gmmot.compiled import release_if_crowded
from gmmot.knobs import knob_widgets, setting_widgets
from gmmot.plots.cells import (
    LAYERS,
    cells_data,
    diracs_data,
    image_data,
    show_layers,
    target_figure,
)
from gmmot.plots.traces import mark_step, trace_data, trace_figure
from gmmot.screen import Screen
from gmmot.upload import ChunkedUpload
from gmmot.widgets import LabelledCheckbox
from gmmot_core.targets import (
    MAX_IMAGE_BYTES,
    image_from_bytes,
    mixture_in_box,
    random_gmm,
    with_floor,
)
from gmmot_runs.descent import DescentKnobs, DescentRun, DescentSettings

__all__ = ["DescentScreen"]

# targets from the session's coupled-EM pair: which mixture of the pair
FITS = {"coupled-EM fit, cloud 0": 0, "coupled-EM fit, cloud 1": 1}
FRAME_MS = 60  # at most ~16 frames a second, and only as fast as the browser paints

KEPT = "The previous target is kept."


class DescentScreen(Screen):
    """One Dirac descent, animated by a session-scoped periodic callback."""

    title = "Dirac descent"
    files_stem = "gmmot-descent"
    #: two lines a first-time user reads before anything else (the jargon is in ``about``)
    try_first = (
        "Points move until each owns an equal share of the picture's mass. Press **Play**; "
        "then upload a picture of your own (dark = more mass) or raise **N**."
    )
    about = """
**Dirac descent** moves N point masses to minimise the exact semi-discrete W2² (no 1/2
factor, as sdot) to a target image: every cell of the Laguerre diagram is clipped exactly
and its mass, centroid and second moment are integrated exactly for the pixel-constant
density; the weights are solved by damped Newton to max |m_i - 1/N| <= 1e-8 (float64).
Lloyd moves each Dirac to its cell's centroid (red segments). The default is the
two-peak target of sdot's tutorial; a Gaussian mixture target is random or one of this
session's coupled-EM fits, moved into the unit square by a similarity. An uploaded
picture keeps its aspect (longer side 1); its empty pixels get 1e-9 of the mean pixel,
so random Diracs over a white background can start.
"""

    kind, Knobs, Settings = DescentRun.kind, DescentKnobs, DescentSettings

    def __init__(
        self,
        pair_source: Callable[[], tuple] | None = None,
        picture: np.ndarray | None = None,
        settings: DescentSettings | None = None,
        knobs: DescentKnobs | None = None,
        **params,
    ):
        """``pair_source()`` (optional) gives this session's coupled-EM pair of mixtures
        ``(weights, means, covs)``, offered as targets (moved into the unit square).
        ``picture [W, H]`` (axis 0 = x, values >= 0: the mass) is the target instead of
        the tutorial's, as an uploaded one; ``settings`` and ``knobs`` the first run's
        and the controls' values (a notebook's)."""
        super().__init__(**params)
        self._pair_source = pair_source
        self._upload_values: np.ndarray | None = picture
        self._look: dict | None = None  # the step looked back at, if any
        self._told: str | None = None  # said once the run on an upload is built
        self.make_playback(FRAME_MS)
        st = settings or self.Settings()
        if picture is None:
            target, values = {"preset": "tutorial two peaks", "res": 64}, None
        else:
            target, values = {"values": None}, with_floor(picture)
        self.run = DescentRun(target, st.n, st.init, st.seed, values)
        self.run.set(**(knobs or self.Knobs()).values())
        self._build(st)
        self._draw_all()

    # -- widgets ----------------------------------------------------------------------
    def _build(self, settings: DescentSettings) -> None:
        self.w_target = pn.widgets.Select(
            label="target",
            options=["tutorial two peaks", "gaussian mixture"]
            + (list(FITS) if self._pair_source is not None else [])
            + ["uploaded image"],
            value="tutorial two peaks" if self._upload_values is None else "uploaded image",
        )
        self.w_upload = ChunkedUpload(
            label="target image (PNG or JPEG)", max_bytes=MAX_IMAGE_BYTES, notice=self.notice
        )
        self.w_invert = LabelledCheckbox(
            label="bright pixels = more mass (off: dark = more mass)", value=False
        )
        self.settings = setting_widgets(settings, self._warn)
        self.w_n, self.w_init, self.w_seed = (self.settings[k] for k in ("n", "init", "seed"))
        self.knobs = knob_widgets(self.run.knobs)
        k = self.knobs
        self.w_lr, self.w_lloyd, self.w_steps = k["lr"], k["lloyd"], k["steps_per_frame"]
        self.make_controls()
        self.w_look = pn.widgets.IntSlider(label="look back (frame)", start=0, end=1, value=0)
        self.w_layers = pn.widgets.CheckButtonGroup(
            options=list(LAYERS),
            value=list(LAYERS),
            sizing_mode="stretch_width",
            color="primary",  # a shown layer is filled, a hidden one outlined
            variant="outline",
        )
        self.counter = pn.pane.Markdown("")
        self.downloads = self.downloads_for(
            [
                (self._positions_file, "gmmot-diracs.csv", "positions (CSV)"),
                *self.run_files(),
            ]
        )
        self.fig, self.src = target_figure()
        self.w2_fig, self.w2_src = trace_figure("W2² along the steps", "W2²")
        self.err_fig, self.err_src = trace_figure(
            "cell-mass error max |N m_i - 1|", "relative error"
        )
        for w in (self.w_target, self.w_n, self.w_init, self.w_seed, self.w_invert):
            w.param.watch(self.rebuild, "value")
        self.announce([self.w_target, self.w_n, self.w_init, self.w_seed, self.w_invert])
        self.watch_upload(self.w_upload, "Image", KEPT, self.upload)
        self.w_look.param.watch(self._on_look, "value")
        self.w_layers.param.watch(lambda e: show_layers(self.fig, e.new), "value")

    # -- drawing ----------------------------------------------------------------------
    def _draw_all(self) -> None:
        self.src["image"].data = image_data(self.run.values)
        self._draw(self.run.view)

    def _draw(self, view: dict) -> None:
        with pn.io.hold():
            self.src["cells"].data = cells_data(view["cells"])
            dots = diracs_data(view["positions"], view["barycenters"], view["masses"])
            if len(self.src["diracs"].data["x"]) == len(dots["x"]):  # same N: what moved
                self.src["diracs"].data.update({k: dots[k] for k in ("x", "y", "bx", "by", "err")})
            else:
                self.src["diracs"].data = dots
            self.w2_src.data = trace_data(view["w2"])
            self.err_src.data = trace_data(view["error"])
            last = len(self.run.history) - 1
            self.w_look.param.update(end=max(last, 1), value=last)
        n = len(view["positions"])
        self.counter.object = (
            f"**step** {view['step']} · **N** {n} · **W2²** {view['w2'][-1]:.6g} · "
            f"**max |N m - 1|** {view['error'][-1]:.2e}"
        )
        if view["messages"]:
            self._warn(f"Stopped at step {view['step']}: " + "; ".join(view["messages"]))

    def _on_look(self, event) -> None:
        if self.playing:
            return
        if event.new >= len(self.run.history) - 1:  # back to the latest step
            if self._look is not None:
                self._look = None
                for fig in (self.w2_fig, self.err_fig):
                    mark_step(fig, None)
                self._draw(self.run.view)
            return
        run, frame = self.run, event.new
        self.worker.submit(
            f"the cells of frame {frame}",
            lambda: run.cells_at(frame),
            lambda looked: self._looked(run, looked),
            lambda exc: self._warn(f"Could not rebuild that step: {exc}."),
            key="look",
        )

    def _looked(self, run: DescentRun, looked: tuple) -> None:
        if run is not self.run or self.playing:
            return
        step, y, cells = looked
        self._look = {"step": step, "positions": y, "cells": cells}
        with pn.io.hold():
            self.src["cells"].data = cells_data(cells)
            zero = np.zeros(len(y))
            self.src["diracs"].data = diracs_data(y, y, zero + 1.0 / len(y))
            for fig in (self.w2_fig, self.err_fig):
                mark_step(fig, step)
        self.counter.object = f"**looking back at step** {step} (drag right to return)"

    def shown_view(self) -> dict:
        """The view on screen: the latest step, or the step being looked back at (what the
        figure and positions exports show)."""
        view = self.run.view
        if self._look is None:
            return view
        y = self._look["positions"]
        return view | self._look | {"barycenters": y}

    # -- reactions --------------------------------------------------------------------
    def _target(self) -> tuple[dict, np.ndarray | None]:
        kind = self.w_target.value
        if kind == "tutorial two peaks":
            return {"preset": kind, "res": 64}, None
        if kind == "gaussian mixture":
            return {"preset": kind, "res": 128} | random_gmm(self.w_seed.value), None
        if kind in FITS:
            fit = mixture_in_box(*self._pair_source()[FITS[kind]])
            return {"preset": "gaussian mixture", "res": 128} | fit, None
        if self._upload_values is None:
            raise ValueError("upload a PNG or JPEG first")
        values = self._upload_values
        return {"values": None}, with_floor(
            values.max() - values if self.w_invert.value else values
        )

    def opened(self) -> None:
        """Take the coupled-EM fit again (when this tab opens with such a target)."""
        if self.w_target.value in FITS:
            self.rebuild()

    def rebuild(self, _event=None, told: Callable[[], str] | None = None) -> None:
        """A new run for the current target and Diracs, built in the worker (a new N or
        image size compiles a new solver); the old one stays on failure."""
        if told is None and self._told is not None:
            told, self._told = (lambda text=self._told: text), None
        try:
            target, values = self._target()
        except Exception as exc:
            self._warn(f"Could not start that run: {exc}. The previous run is kept.")
            return
        n, init, seed = self.w_n.value, self.w_init.value, self.w_seed.value

        def build() -> DescentRun:
            release_if_crowded()
            return DescentRun(target, n, init, seed, values)

        def use(run: DescentRun) -> None:
            self.run = run
            self._look = None
            self._clear()
            self._draw_all()
            if told is not None:
                self._inform(told())

        self.submit_run(
            f"preparing N = {n} Diracs (a new N or image size compiles the first time)",
            build,
            use,
            "Could not start that run",
        )

    def upload(self, raw: bytes, name: str = "") -> None:
        """A picture's file (PNG / JPEG) as the target: read in the worker, then a run on
        it; a file that cannot be read is refused and the target kept."""
        name = name or "image"

        def decoded(values: np.ndarray) -> None:
            self._upload_values = values
            w, h = values.shape  # axis 0 = x
            told = (
                f"target: {name}, {w} x {h} pixels "
                f"({'lighter' if self.w_invert.value else 'darker'} = more mass)"
            )
            if self.w_target.value == "uploaded image":
                self.rebuild(told=lambda: told)
            else:
                self._told = told  # said once the run on it is built
                self.w_target.value = "uploaded image"  # triggers the rebuild

        self.read_upload(self.w_upload, "Image", KEPT, name, lambda: image_from_bytes(raw), decoded)

    reset_label = "back to the first positions"

    def _show_reset(self, view: dict) -> None:
        self._draw(view)

    def _tick(self, clicked: bool = False) -> None:
        """A frame (``clicked``: a Step click, queued after the work in flight; a click
        is never dropped)."""
        if self.run.stopped:
            self._pause()
            return
        if self.worker.busy and not clicked:
            return  # one frame in flight at most, and none while a new run is prepared
        self.submit_frame(
            f"{self.w_steps.value} descent step(s), N = {self.run.n}",
            self.step_job(self.run),
            self._draw,
            "The step failed: {exc}.",
        )

    # -- exports ----------------------------------------------------------------------
    def _positions_file(self) -> io.StringIO:
        """The positions on screen, with the step they are at (the step looked back at,
        or the latest: the results file is the run's latest step and says which)."""
        view = self.shown_view()
        y = np.asarray(view["positions"])
        out = io.StringIO()
        out.write("x,y,step\n")
        step = np.full((len(y), 1), int(view["step"]))
        np.savetxt(out, np.hstack([y, step]), fmt=["%.17g", "%.17g", "%d"], delimiter=",")
        out.seek(0)
        return out

    # -- layout -----------------------------------------------------------------------
    def sidebar(self) -> list:
        return [
            pn.pane.Markdown("### Run"),
            self.controls,
            self.w_lr,
            self.w_lloyd,
            self.w_steps,
            pn.pane.Markdown("### Target and Diracs"),
            self.w_target,
            pn.pane.Markdown("Upload a picture (PNG / JPEG, darker = more mass)"),
            self.w_upload,
            self.w_invert,
            self.w_n,
            self.w_init,
            self.w_seed,
            *self.export_section(),
        ]

    def __panel__(self):
        return self.main_column(
            self.counter,
            self.figure_row(self.fig, self.w2_fig, self.err_fig),
            self.w_layers,
            self.w_look,
        )
