"""Screen: free-support Wasserstein barycenter of Gaussian mixtures (Bures cost), live."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import panel as pn

from gmmot.compiled import release_if_crowded
from gmmot.knobs import knob_widgets, setting_widgets
from gmmot.plots.contours import (
    contour_figure,
    contour_lines,
    grid_extent,
    grid_minima,
    label_colors,
    merge_lines,
    place_labels,
    support_data,
)
from gmmot.plots.coupling import coupling_data, coupling_figure
from gmmot.plots.traces import trace_data, trace_figure
from gmmot.screen import Screen
from gmmot_runs.barycenter import (
    BarycenterKnobs,
    BarycenterRun,
    BarycenterSettings,
    BarycenterSpec,
    barycenter_grid,
    input_grids,
)

__all__ = ["BarycenterScreen"]

FRAME_MS = 200


class BarycenterScreen(Screen):
    """One barycenter run; iterations animate, weight / epsilon moves restart it warm."""

    title = "GMM barycenter"
    files_stem = "gmmot-barycenter"
    #: two lines a first-time user reads before anything else (the jargon is in ``about``)
    try_first = (
        "The average of several mixtures in the optimal-transport sense. Drag a **weight** "
        "slider: the barycenter's contours slide towards that input."
    )
    about = """
**GMM barycenter**: the free-support Wasserstein barycenter of several Gaussian mixtures
under the Bures (W2 between Gaussians) cost, as OTT-JAX's ``FreeWassersteinBarycenter``
and its *GMM barycenters* notebook: a support of ``bar_size`` Gaussians with uniform
weights; each iteration solves entropic OT from the support to every input and moves
every support Gaussian to the Bures barycenter of its transport rows. Contours are the
``-log`` densities at log-spaced levels; red ellipses are the support (1 sigma). Moving a
weight or epsilon restarts the iterations from the current support (no recompile).
"""

    kind, Knobs, Settings = BarycenterRun.kind, BarycenterKnobs, BarycenterSettings

    def __init__(
        self,
        pair_source: Callable[[], tuple] | None = None,
        pair_label: str = "coupled-EM pair",
        settings: BarycenterSettings | None = None,
        knobs: BarycenterKnobs | None = None,
        lambdas=None,
        **params,
    ):
        """``pair_source()`` (optional) gives mixtures ``(weights, means, covs)`` offered
        as inputs next to the notebook's generator, under ``pair_label``: this session's
        coupled-EM pair, or a notebook's own mixtures (then the first run's inputs).
        ``settings``, ``knobs`` and ``lambdas`` (the barycentric weights): the first
        run's and the controls' values (a notebook's)."""
        super().__init__(**params)
        self._pair_source, self._pair_label = pair_source, pair_label
        self.make_playback(FRAME_MS)
        self._inputs_of: BarycenterRun | None = None
        knobs = knobs or self.Knobs()
        self._build(settings or self.Settings(), knobs)
        self.run = BarycenterRun(BarycenterSpec.from_dict(json.loads(self._spec().to_json())))
        self.run.set(lambdas=lambdas, epsilon=knobs.epsilon)
        self._weight_sliders()
        self._draw()

    # -- widgets ----------------------------------------------------------------------
    def _build(self, settings: BarycenterSettings, knobs: BarycenterKnobs) -> None:
        sources = ["notebook generator"] + ([self._pair_label] if self._pair_source else [])
        # a notebook's own mixtures are what it asked for; the coupled-EM pair is offered
        first = sources[0] if self._pair_label == "coupled-EM pair" else sources[-1]
        self.w_source = pn.widgets.RadioButtonGroup(options=sources, value=first)
        self.settings = setting_widgets(
            settings, self._warn, sliders=("inputs", "components", "bar_size")
        )
        st = self.settings
        self.w_inputs, self.w_comp, self.w_alpha = st["inputs"], st["components"], st["alpha"]
        self.w_seed, self.w_bar = st["seed"], st["bar_size"]
        self.w_init = pn.widgets.Select(label="initial support", options=["random"])
        self.knobs = knob_widgets(knobs)
        self.w_eps, self.w_steps = self.knobs["epsilon"], self.knobs["steps_per_frame"]
        self.weights_box = pn.Column()
        self.make_controls()
        self.counter = pn.pane.Markdown("")
        self.downloads = self.downloads_for(self.run_files())
        self.fig, self.src = contour_figure()
        self.cost_fig, self.cost_src = trace_figure("cost along the iterations", "cost")
        self.cost_fig.xaxis.axis_label = "iteration"
        self.map_fig, self.map_src = coupling_figure()
        for w in (self.w_alpha, self.w_seed, self.w_init):
            w.param.watch(self.rebuild, "value")
        for w in (self.w_inputs, self.w_comp, self.w_bar):  # shapes: on release, not per value
            w.param.watch(self.rebuild, "value_throttled")
        self.w_source.param.watch(self.rebuild, "value")
        self.announce([self.w_inputs, self.w_comp, self.w_bar, self.w_alpha, self.w_seed])
        self.announce([self.w_init, self.w_source])
        self.w_eps.param.watch(self._on_knob, "value")

    def _weight_sliders(self) -> None:
        """One slider per input (a single t for two inputs), set to the run's weights."""
        lam = self.run.lambdas / self.run.lambdas.sum()
        if len(lam) == 2:
            t = round(float(lam[1]), 2)
            sliders = [pn.widgets.FloatSlider(label="t (weight of input 2)", value=t, step=0.01)]
        else:
            sliders = [
                pn.widgets.FloatSlider(
                    label=f"relative weight of input {i + 1} (λ = weights / their sum)",
                    value=round(float(x), 2),
                    step=0.01,
                )
                for i, x in enumerate(lam)
            ]
        for s in sliders:
            s.param.watch(self._on_knob, "value_throttled")
        self.w_weights = sliders
        self.weights_box.objects = sliders
        self.w_init.options = ["random"] + [f"input {i}" for i in range(len(lam))]

    def _lambdas(self) -> np.ndarray:
        v = np.array([s.value for s in self.w_weights], np.float64)
        return np.array([1.0 - v[0], v[0]]) if len(v) == 1 else v

    # -- drawing ----------------------------------------------------------------------
    def _inputs(self, run: BarycenterRun) -> dict:
        """The inputs' grid, contour lines and minima: computed once per run (the inputs
        do not change within a run), not per frame."""
        if self._inputs_of is not run:
            xs, ys, grids, levels = input_grids(run.view["inputs"])
            lines = [contour_lines(xs, ys, g, levels) for g in grids]
            self._inputs_cache = dict(
                xs=xs, ys=ys, levels=levels, lines=lines, minima=grid_minima(xs, ys, grids)
            )
            self._inputs_of = run
        return self._inputs_cache

    def _columns(self, run: BarycenterRun) -> dict:
        """What the plots show of ``run``'s view (host work: made in the worker)."""
        view = run.view
        inp = self._inputs(run)
        xs, ys = inp["xs"], inp["ys"]
        bar = barycenter_grid(view["means"], view["covs"], xs, ys)
        lines = [*inp["lines"], contour_lines(xs, ys, bar, inp["levels"], 2.2)]
        names = [f"input {i + 1}" for i in range(len(view["inputs"]))] + ["barycenter"]
        labels = place_labels(
            lines, names, label_colors(len(names)), grid_extent(xs, ys),
            [*inp["minima"], *grid_minima(xs, ys, [bar])],
        )  # fmt: skip
        return {
            "view": view,
            "lines": merge_lines(lines),
            "labels": labels,
            "support": support_data(view["means"], view["covs"]),
            "costs": trace_data(view["costs"], floor=1e-12, start=1),
            "coupling": coupling_data(view["coupling"]),
        }

    def _draw(self, cols: dict | None = None) -> None:
        cols = self._columns(self.run) if cols is None else cols
        view = cols["view"]
        with pn.io.hold():
            self.src["lines"].data = cols["lines"]
            self.src["labels"].data = cols["labels"]
            self.src["support"].data = cols["support"]
            self.cost_src.data = cols["costs"]
            self.map_src.data = cols["coupling"]
        lam = ", ".join(f"{x:.2f}" for x in view["lambdas"] / view["lambdas"].sum())
        # "converged" once OTT's rule stops the run (two costs agree and >= 5 iterations)
        done, agree = view["done"], view["converged"]
        idle = "paused" if view["iteration"] else "ready: press Play"
        state = (
            "converged"
            if done and agree
            else ("stopped" if done else ("running" if self.playing else idle))
        )
        cost = f"{view['costs'][-1]:.6g}" if len(view["costs"]) else "-"
        self.counter.object = (
            f"**iteration** {view['iteration']} · **cost** {cost} · **{state}** · "
            f"**λ** ({lam}) · **ε** {view['epsilon']:.3g}"
        )

    # -- reactions --------------------------------------------------------------------
    def _spec(self) -> BarycenterSpec:
        mixtures = None
        if self.w_source.value == self._pair_label:
            names = ("weights", "means", "covs")
            mixtures = [
                {k: np.asarray(x, np.float64).tolist() for k, x in zip(names, g, strict=True)}
                for g in self._pair_source()
            ]
        return BarycenterSpec(
            n_inputs=self.w_inputs.value if mixtures is None else len(mixtures),
            n_components=self.w_comp.value, alpha=float(self.w_alpha.value),
            seed=self.w_seed.value, bar_size=self.w_bar.value,
            init=self.w_init.value if self.w_init.value in self.w_init.options else "random",
            mixtures=mixtures,
        )  # fmt: skip

    def opened(self) -> None:
        """Take the coupled-EM pair again (when this tab opens with that source)."""
        if self.w_source.value == "coupled-EM pair":  # a notebook's mixtures do not change
            self.rebuild()

    def _fail(self, text: str) -> Callable[[Exception], None]:
        return lambda exc: self._warn(text.format(exc=exc))

    def rebuild(self, _event=None) -> None:
        """A new run for the current inputs and support, built in the worker (new input
        shapes compile a new step); the old one stays on failure."""
        try:
            spec = BarycenterSpec.from_dict(json.loads(self._spec().to_json()))
        except Exception as exc:
            self._warn(f"Could not start that run: {exc}. The previous run is kept.")
            return
        lambdas, eps = self._lambdas(), self.w_eps.value

        def build() -> tuple:
            release_if_crowded()
            run = BarycenterRun(spec)
            # the sliders' weights when they fit the new inputs, set before the view is
            # drawn (the status line showed the defaults while Play used the sliders)
            keep = len(lambdas) == len(run.lambdas) and lambdas.sum() > 0
            run.set(lambdas=lambdas if keep else run.lambdas, epsilon=eps)
            return run, self._columns(run), keep

        def use(built: tuple) -> None:
            run, cols, keep = built
            self.run = run
            self._clear()
            if not keep:
                self._weight_sliders()
            self._draw(cols)

        self.submit_run(
            f"preparing {spec.n_inputs} inputs, bar_size {spec.bar_size} (a new size compiles "
            "the first time)",
            build,
            use,
            "Could not start that run",
        )

    def _on_knob(self, _event=None) -> None:
        """Weights or epsilon moved: the run restarts warm on the next frame."""
        lambdas, eps = self._lambdas(), self.w_eps.value

        def applied(_r) -> None:
            self._clear()
            if not self.playing:
                self._play()

        self.worker.submit(
            "applying the weights",
            lambda: self.run.set(lambdas=lambdas, epsilon=eps),
            applied,
            self._fail("{exc}; the previous weights are kept."),
            lane="frame",
            key="knobs",
        )

    reset_label = "back to the initial support"

    def _reset_job(self, run: BarycenterRun) -> Callable[[], dict]:
        lambdas, eps = self._lambdas(), self.w_eps.value

        def reset() -> dict:
            run.set(lambdas=lambdas, epsilon=eps)
            run.reset()
            return self._columns(run)

        return reset

    def _show_reset(self, cols: dict) -> None:
        self._draw(cols)

    def _tick(self, clicked: bool = False) -> None:
        """A frame (``clicked``: a Step click, queued after the work in flight; a click is
        never dropped)."""
        if self.worker.busy and not clicked:
            return  # one frame in flight at most, and none while a new run is prepared
        if self.run.stopped and not clicked:
            self._pause()  # converged: idle until a knob moves
            return
        run, steps = self.run, self.w_steps.value

        def step() -> dict:
            run.set(steps_per_frame=steps)
            run.step()
            return self._columns(run)

        self.submit_frame(
            f"{steps} barycenter iteration(s)", step, self._draw, "The iteration failed: {exc}."
        )

    # -- exports ----------------------------------------------------------------------
    # -- layout -----------------------------------------------------------------------
    def sidebar(self) -> list:
        return [
            pn.pane.Markdown("### Run"),
            self.controls,
            pn.pane.Markdown("Barycentric weights (normalised to sum 1)"),
            self.weights_box,
            self.w_eps,
            self.w_steps,
            pn.pane.Markdown("### Inputs and support"),
            self.w_source,
            self.w_inputs,
            self.w_comp,
            self.w_alpha,
            self.w_seed,
            self.w_bar,
            self.w_init,
            *self.export_section(),
        ]

    def __panel__(self):
        return self.main_column(
            self.counter,
            self.figure_row(self.fig, self.cost_fig, self.map_fig),
        )
