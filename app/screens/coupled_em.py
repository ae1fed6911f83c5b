"""Screen: coupled EM live, with its knobs, the coupling, the reweighting and the traces."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import panel as pn
import param

from gmmot.compiled import independent_fit, release_if_crowded
from gmmot.knobs import knob_widgets, setting_widgets
from gmmot.models import DataSource
from gmmot.screen import Screen
from gmmot.screens.coupled_em_figures import CoupledEMFigures
from gmmot.upload import ChunkedUpload
from gmmot.widgets import BoundedIntInput, LabelledCheckbox
from gmmot_core import coupled_em as ce
from gmmot_core.io import MAX_BYTES, parse_points
from gmmot_runs.coupled_em import CoupledEMKnobs, CoupledEMRun, clouds_csv
from gmmot_runs.coupled_em_spec import CoupledEMSettings


class CoupledEMScreen(Screen):
    """Coupled EM of the two clouds, animated by a session-scoped periodic callback."""

    title = "Coupled EM"
    files_stem = "gmmot"
    #: two lines a first-time user reads before anything else (the jargon is in ``about``)
    try_first = (
        "Two clouds, one mixture fitted to each, pulled together by optimal transport. It "
        "opens balanced (no mass created or destroyed): drag **epsilon** and watch the links. "
        "Then untick **balanced** and drag **rho**: the reweighting bars show which "
        "populations grow or shrink."
    )
    about = """
**Coupled EM** fits one Gaussian mixture per cloud while penalising the entropic
(unbalanced) GMM-OT distance between them (Delon & Desolneux 2020; OTT-JAX
``fit_gmm_pair``). The demo pair is drawn from the two generator mixtures of the
*Fitting Coupled GMMs* notebook; both fits start from one mixture fitted to the pooled
points. Points are coloured by their most likely component; solid 1-sigma and dashed
2-sigma ellipses, opacity by weight. Links join coupled components (width by mass).
"""

    kind, Knobs, Settings = CoupledEMRun.kind, CoupledEMKnobs, CoupledEMSettings

    data = param.ClassSelector(class_=DataSource)
    frame_count = param.Integer(default=0, doc="Frames produced since the last reset.")

    def __init__(self, run: CoupledEMRun | None = None, **params):
        """``run``: the run to show (a notebook's, on its own clouds; its knobs and
        structure set the controls); default: the data source's preset, balanced, as the
        notebook runs first (the "Try first" hint leads to unbalanced)."""
        params.setdefault("data", DataSource())
        super().__init__(**params)
        # where each cloud comes from, when not from the preset ("uploaded x.csv")
        self._sources: list[str | None] = [None, None]
        if run is None:
            self._clouds = self.data.clouds()
            self._weights: list[np.ndarray | None] = [None, None]
            run = CoupledEMRun(*self._clouds, data=self.data.spec())
        else:
            self._clouds, self._weights = [run.points0, run.points1], [run.weights0, run.weights1]
            self._sources = ["your arrays", "your arrays"]
        self.run = run
        self._build_widgets()
        self.make_playback(self._period())
        self.figures = CoupledEMFigures()
        self.data.param.watch(
            self._on_data, ["preset", "n", "seed", "shift", "rotation", "reweight"]
        )
        self._draw(self.run.view, full=True)

    # -- widgets --------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.knobs = knob_widgets(self.run.knobs)
        k = self.knobs
        self.w_eps, self.w_rho, self.w_bal = k["epsilon"], k["rho"], k["balanced"]
        self.w_wt, self.w_lr = k["weight_transport"], k["learning_rate"]
        s = self.run.structure
        names = self.Settings.names()
        now = self.Settings(**{n: getattr(s, n) for n in names})
        self.settings = setting_widgets(now, self._warn, sliders=names)
        self.w_k, self.w_msteps, self.w_per_frame = (self.settings[n] for n in names)
        self.w_tau = pn.pane.Markdown("", margin=(0, 10))
        self.data_in_use = pn.pane.Markdown("", margin=(0, 10))
        self.make_controls()
        self.counter = pn.pane.Markdown("", margin=(0, 10))
        self.w_fps = pn.widgets.IntSlider(
            label="target frames per second", start=1, end=30, value=20
        )
        self.w_fps.param.watch(self._on_fps, "value")
        self.w_baseline = LabelledCheckbox(label="show independent EM baseline", value=False)
        self.upload0 = ChunkedUpload(label="cloud 0", max_bytes=MAX_BYTES, notice=self.notice)
        self.upload1 = ChunkedUpload(label="cloud 1", max_bytes=MAX_BYTES, notice=self.notice)
        files = self.run_files(figure="gmmot-figure")
        data = (self._data_file, "gmmot-data.csv", "data (CSV)")
        self.downloads = self.downloads_for([*files[:2], data, *files[2:]])

        for w in self.knobs.values():
            w.param.watch(self._on_knob, "value")
        self.w_msteps.param.watch(self._on_structure, "value")
        self.w_per_frame.param.watch(self._on_structure, "value")
        self.w_k.param.watch(self._on_k, "value_throttled")  # K compiles: on release only
        self.announce([self.w_k])
        self.w_baseline.param.watch(self._draw_baseline, "value")
        for i, up in enumerate((self.upload0, self.upload1)):
            self.watch_upload(
                up,
                f"Upload for cloud {i}",
                "The previous data are kept.",
                lambda raw, name, i=i: self.upload(raw, name, which=i),
            )
        self._update_tau()
        self._show_data_in_use()

    def _update_tau(self) -> None:
        k = self.run.knobs
        rho = "∞ (balanced)" if k.balanced else f"{k.rho:.3g}"
        self.w_tau.object = (
            f"**tau** = rho / (rho + eps) = {k.tau:.4f} · **rho** = {rho} "
            f"· **eps** = {k.epsilon:.3g}"
        )

    # -- drawing ----------------------------------------------------------------------
    def _draw(self, view: dict, full: bool = False) -> None:
        """A view of the run: every frame the mixtures and the pair, the summaries at most
        4 times a second while playing (:class:`CoupledEMFigures`)."""
        balanced = self.run.knobs.balanced
        if self.figures.draw(view, self._clouds, balanced, full, self.playing):
            self._draw_counter(view)
        # the OT solve's convergence is shown in the numbers table, not as a warning
        not_converged = ce.STATUS_TEXT[ce.SINKHORN_NOT_CONVERGED]
        msgs = [m for m in view["messages"] if m != not_converged]
        if msgs:
            self._warn("; ".join(msgs))

    def _draw_counter(self, view: dict) -> None:
        self.counter.object = (
            f"**frame** {self.frame_count} · **EM iteration** {int(view['iteration'])}"
        )

    def _draw_baseline(self, _event=None) -> None:
        """Independent EM fits (dotted) beside the coupled ones, for comparison (fitted
        in the worker)."""
        if not self.w_baseline.value:
            self.figures.draw_baseline(None)
            return

        def fit() -> list:
            release_if_crowded()
            k = self.run.structure.k
            return [
                independent_fit(pts, k, 30, seed=i, point_weights=self._weights[i]).gmm
                for i, pts in enumerate(self._clouds)
            ]

        def draw(gmms: list) -> None:
            if self.w_baseline.value:
                self.figures.draw_baseline(gmms)

        self.worker.submit(
            "fitting the independent EM baseline",
            fit,
            draw,
            lambda exc: self._warn(f"The baseline fit failed: {exc}."),
            key="baseline",
        )

    # -- reactions ------------------------------------------------------------------
    # Every change to the run goes through the worker, after the frame in flight: the run
    # is only ever touched by one thread at a time, and a newer value supersedes an older
    # one still waiting (``key``).
    def _on_knob(self, _event=None) -> None:
        values = self.knob_values()
        self.worker.submit(
            "applying the knobs",
            lambda: self.run.set(**values),
            lambda _r: self._update_tau(),
            lambda exc: self._warn(f"Those knob values were refused: {exc}."),
            lane="frame",
            key="knobs",
        )

    def _on_structure(self, _event=None) -> None:
        counts = {"m_steps": self.w_msteps.value, "em_per_frame": self.w_per_frame.value}
        self.worker.submit(
            "applying the step counts",
            lambda: self.run.set_structure(**counts),
            lambda _view: None,
            lambda exc: self._warn(f"Those step counts were refused: {exc}."),
            lane="frame",
            key="structure",
        )

    def _on_k(self, _event=None) -> None:
        k = self.w_k.value
        if k == self.run.structure.k:
            self.worker.cancel(key="k")  # dragged back before a pending K ran
            return  # or the slider put back after a refused K: the run goes on

        def apply() -> dict:
            release_if_crowded()
            return self.run.set_structure(k=k)

        def refused(exc: Exception) -> None:  # keep the run; the slider goes back
            old = self.run.structure.k
            self._warn(f"K = {k} refused: {exc}. K stays {old}.")
            self.w_k.value = old

        self.worker.submit(
            f"preparing K = {k} (a new K compiles the first time)",
            apply,
            lambda view: self._restarted(view),
            refused,
            key="k",
            stale=True,
        )

    def _restarted(self, view: dict) -> None:
        self.frame_count = 0
        self._draw(view, full=True)
        self._draw_baseline()

    reset_label, reset_pauses = "back to the initial mixtures", False

    def _show_reset(self, view: dict) -> None:
        self._restarted(view)

    def _replace_data(
        self,
        make,
        what: str,
        told: Callable[[], str] | None = None,
        refused: str = "Could not use the new data",
        upload: ChunkedUpload | None = None,
        source: tuple[int, str] | None = None,
    ) -> None:
        """In the worker: ``make()`` gives ``(clouds, weights, data spec)`` and a new run
        is built on them; on any failure the previous data and run are kept (and the
        ``upload`` box that brought the data is emptied). ``source``: ``(cloud, where
        it comes from)`` of an upload (None: both clouds are the preset's). Read when the data are
        put in use: a second upload may start before the first is in use."""

        def build():
            clouds, weights, data = make()
            release_if_crowded()  # new cloud sizes compile a new step
            runner = CoupledEMRun(
                *clouds,
                weights[0],
                weights[1],
                knobs=self.run.knobs,
                structure=self.run.structure,
                data=data,
            )
            return list(clouds), list(weights), runner

        def use(result) -> None:
            self._clouds, self._weights, self.run = result
            if source is None:
                self._sources = [None, None]
            else:
                self._sources[source[0]] = source[1]
            self._clear()
            self._restarted(self.run.view)
            if told is not None:
                self._inform(told())
            self._show_data_in_use()

        self.submit_run(
            what, build, use, refused, "The previous data are kept.", upload, pause=False
        )

    def _on_data(self, event=None) -> None:
        uploaded = "inline" in self.run.data
        if uploaded and event is not None and event.name != "preset":
            # the preset's settings do not apply to uploads: nothing is replaced silently
            self._warn(
                f"{event.name} = {event.new} applies to the preset; the uploaded clouds are "
                "kept. Pick a preset to replace them."
            )
            return
        spec = self.data.spec()

        def make():
            return self.data.clouds(), [None, None], spec

        told = (
            (lambda: f"The preset '{spec['preset']}' replaced the uploaded clouds.")
            if uploaded
            else None
        )
        self._replace_data(
            make, f"making the preset '{self.data.preset}', {self.data.n} points", told
        )

    def upload(self, raw: bytes, name: str = "", which: int = 0) -> None:
        """A cloud's file (CSV / TSV / NPY: x, y[, weight]) as cloud ``which``, read and
        run in the worker; a file that cannot be used is refused and the data kept."""
        widget = self.upload0 if which == 0 else self.upload1
        notes = []

        def make():
            pts, w, note = parse_points(raw, name)
            notes.append(note)
            clouds, weights = list(self._clouds), list(self._weights)
            clouds[which], weights[which] = pts, w
            return clouds, weights, {"inline": True}

        self._replace_data(
            make,
            f"reading {name or 'the upload'} for cloud {which}",
            lambda: f"cloud {which}: {notes[0]}",
            source=(which, f"uploaded {name or 'a file'}"),
            refused=f"Upload for cloud {which} rejected",
            upload=widget,
        )

    def _show_data_in_use(self) -> None:
        """The Data section says which clouds are in use: the preset's settings below it
        describe a cloud only while it comes from the preset."""
        d = self.data
        preset = f"preset '{d.preset}', seed {d.seed}"
        parts = []
        rows = zip(self._clouds, self._weights, self._sources, strict=True)
        for i, (pts, w, src) in enumerate(rows):
            origin = src or preset
            weighted = ", weighted" if w is not None else ""
            parts.append(f"cloud {i} from {origin} ({len(pts)} points{weighted})")
        self.data_in_use.object = "**In use:** " + "; ".join(parts)

    # -- exports ----------------------------------------------------------------------
    def _data_file(self) -> io.StringIO:
        return io.StringIO(clouds_csv(self._clouds, self._weights))

    # -- animation --------------------------------------------------------------------
    def _tick(self, clicked: bool = False) -> None:
        """A frame (``clicked``: a Step click, queued after the work in flight; a click
        is never dropped)."""
        if self.worker.busy and not clicked:
            return  # one frame in flight at most, and none while a change is prepared
        self.submit_frame(
            "an EM frame",
            self.run.step,
            self._stepped,
            "The frame failed: {exc}. The last good state is kept.",
        )

    def _stepped(self, view: dict) -> None:
        self.frame_count += 1
        self._draw(view)
        if view["rolled_back"]:  # the run stopped: the frame pauses the screen
            self._warn(
                f"Stopped at EM iteration {int(view['first_bad'])}: " + "; ".join(view["messages"])
            )

    def _period(self) -> int:
        return round(1000 / self.w_fps.value)

    def _on_fps(self, _event=None) -> None:
        self.playback.period = self._period()

    def _pause(self) -> None:
        super()._pause()
        # the summary shows the frame we stopped on
        self.figures.draw_summary(self.run.view, self.run.knobs.balanced)
        self._draw_counter(self.run.view)

    # -- layout -----------------------------------------------------------------------
    def sidebar(self) -> list:
        data_widgets = [
            pn.widgets.Select.from_param(self.data.param.preset, label="Preset"),
            BoundedIntInput.from_param(
                self.data.param.n, label="Points per cloud (10-1,000,000)", warn=self._warn
            ),
            BoundedIntInput.from_param(self.data.param.seed, label="Seed", warn=self._warn),
        ]
        self.announce(data_widgets)
        return [
            pn.pane.Markdown("### Run"),
            self.controls,
            self.counter,
            self.w_fps,
            self.w_baseline,
            pn.pane.Markdown("### Transport"),
            self.w_eps,
            self.w_bal,
            self.w_rho,
            self.w_tau,
            self.w_wt,
            pn.pane.Markdown("### Fit"),
            self.w_k,
            self.w_msteps,
            self.w_lr,
            self.w_per_frame,
            pn.pane.Markdown("### Data"),
            self.data_in_use,
            *data_widgets,
            pn.Column(
                pn.widgets.FloatSlider.from_param(self.data.param.shift, label="shift", step=0.5),
                pn.widgets.FloatSlider.from_param(
                    self.data.param.rotation, label="rotation (deg)", step=5
                ),
                pn.widgets.FloatSlider.from_param(
                    self.data.param.reweight, label="reweighting", step=0.05
                ),
                visible=self.data.param.preset.rx() == "random pair",
            ),
            pn.pane.Markdown("Upload cloud 0 / cloud 1 (CSV, TSV or NPY: x, y[, weight])"),
            self.upload0,
            self.upload1,
            *self.export_section(),
        ]

    def __panel__(self):
        return self.main_column(*self.figures.panels())


__all__ = ["CoupledEMScreen"]
