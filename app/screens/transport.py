"""Screen: the GMM-OT map of the coupled-EM pair and its displacement interpolation mu_t."""

from __future__ import annotations

import io
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import panel as pn
import param

from gmmot.compiled import map_images, release_if_crowded, transport_frame
from gmmot.plots.contours import contour_data
from gmmot.plots.transport import ends_data, map_figure, mixture_ellipses
from gmmot.screen import Screen
from gmmot.widgets import LabelledCheckbox
from gmmot_core.mixture import GMM
from gmmot_runs.barycenter import notebook_levels
from gmmot_runs.figures import transport_figure

__all__ = ["TransportScreen"]

FRAME_MS = 50
GRID = 100


class TransportScreen(Screen):
    """Arrows x -> T_mean(x) for a subsample of cloud 0, and mu_t for t in [0, 1]."""

    title = "Transport map"
    #: two lines a first-time user reads before anything else (the jargon is in ``about``)
    try_first = (
        "Where the transport sends each point of cloud 0, and the mixtures in between. Press "
        "**Play** or drag **t** from 0 to 1."
    )
    about = """
**Transport map** of the current coupled-EM pair (refreshed each time this tab opens):
grey arrows send a subsample of cloud 0 to its image under Delon & Desolneux's GMM-OT
map ``T_mean``; dashed ellipses are the two fitted mixtures (blue: cloud 0, green: cloud
1). The displacement interpolation ``mu_t`` mixes the W2 geodesics of the coupled
component pairs, weighted by the normalised coupling: its ``-log`` density contours and
red ellipses move with t, and the orange points are carried along the map,
``(1 - t) x + t T(x)``.
"""

    playing = param.Boolean(default=False, doc="Whether t is being animated.")
    kind = "transport"  # no run of its own: the map of the coupled-EM pair

    def __init__(self, source: Callable[[], tuple[dict, np.ndarray]], **params):
        """``source()`` gives the coupled-EM view (``gmm0``, ``gmm1``, ``report``) and
        the source cloud ``[N, 2]`` of this session."""
        super().__init__(**params)
        self._source = source
        self._direction = 1.0
        self.make_playback(FRAME_MS)
        self._build()
        self.refresh()

    # -- widgets ----------------------------------------------------------------------
    def _build(self) -> None:
        self.w_t = pn.widgets.FloatSlider(label="t", start=0.0, end=1.0, step=0.01, value=0.0)
        self.w_n = pn.widgets.IntSlider(label="arrows", start=20, end=1000, step=20, value=300)
        self.w_arrows = LabelledCheckbox(label="show the arrows x -> T(x)", value=True)
        self.make_controls(step=False, reset=False)
        self.b_refresh = pn.widgets.Button(label="Use the current coupled-EM fit")
        self.counter = pn.pane.Markdown("")
        self.downloads = self.downloads_for(
            [
                (self._map_file, "gmmot-map.csv", "map T(x) of the points (CSV)"),
                (lambda: self._figure_file("png"), "gmmot-transport.png", "figure (PNG)"),
                (lambda: self._figure_file("svg"), "gmmot-transport.svg", "figure (SVG)"),
            ]
        )
        self.fig, self.src, self._arrows = map_figure()
        self.b_refresh.on_click(lambda _e: self.refresh())
        self.w_t.param.watch(lambda _e: self._draw_t(), "value")
        self.w_n.param.watch(lambda _e: self.refresh(), "value_throttled")  # on release
        self.announce([self.w_n, self.b_refresh])
        self.w_arrows.param.watch(lambda e: setattr(self._arrows, "visible", e.new), "value")

    # -- data -------------------------------------------------------------------------
    def opened(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Take the session's current coupled-EM pair and recompute the map."""
        view, cloud = self._source()
        g0, g1 = (GMM(*(np.asarray(x, np.float32) for x in view[k])) for k in ("gmm0", "gmm1"))
        coupling = np.asarray(view["report"].coupling, np.float32)
        if not (np.all(np.isfinite(coupling)) and coupling.sum() > 0):
            self._warn("The coupled-EM pair has no finite coupling yet; the last map is kept.")
            return
        n, mw2 = self.w_n.value, float(np.asarray(view["report"].mw2))

        def build() -> tuple:
            pts = np.asarray(cloud, np.float32)
            pts = pts[np.all(np.isfinite(pts), axis=1)]
            points = pts[np.random.default_rng(0).choice(len(pts), min(n, len(pts)), False)]
            release_if_crowded()  # each arrow count is a shape
            images = np.asarray(jax.device_get(map_images(points, g0, g1, coupling)))
            return points, images

        self.worker.submit(
            f"mapping {n} points (a new arrow count compiles the first time)",
            build,
            lambda built: self._use_map(g0, g1, coupling, mw2, *built),
            lambda exc: self._warn(f"Could not map the points: {exc}. The last map is kept."),
            key="map",
            stale=True,
        )

    def _use_map(self, g0, g1, coupling, mw2: float, points, images) -> None:
        means = np.concatenate([g0.means, g1.means])
        var = np.trace(np.concatenate([g0.covs, g1.covs]), axis1=1, axis2=2)
        pad = 3.0 * np.sqrt(max(float(var.max()), 1e-6))
        lo, hi = means.min(0) - pad, means.max(0) + pad
        self._xs = np.linspace(lo[0], hi[0], GRID, dtype=np.float32)
        self._ys = np.linspace(lo[1], hi[1], GRID, dtype=np.float32)
        self._pair = (g0, g1, coupling)
        self._points, self._images = points, images
        self._mw2 = mw2
        self._clear()
        with pn.io.hold():
            self.src["arrows"].data = {
                "x0": points[:, 0], "y0": points[:, 1], "x1": images[:, 0], "y1": images[:, 1]
            }  # fmt: skip
            self.src["ends"].data = ends_data(g0, g1)
            self._draw_t()

    def _frame(self, t: float | None = None) -> dict:
        g0, g1, coupling = self._pair
        t = jnp.float32(self.w_t.value if t is None else t)
        mu, nld, carried = jax.device_get(
            transport_frame(g0, g1, coupling, self._points, self._images, t, self._xs, self._ys)
        )
        return {
            "t": float(t), "mu": mu, "nld": np.asarray(nld),
            "carried": np.asarray(carried), "points": self._points, "images": self._images,
            "gmm0": g0, "gmm1": g1, "xs": self._xs, "ys": self._ys,
            "levels": notebook_levels(float(np.min(nld))),
        }  # fmt: skip

    def _draw_t(self) -> None:
        """mu_t at the slider's t, made in the worker; a newer t supersedes one waiting."""
        t = self.w_t.value

        def make() -> tuple:
            f = self._frame(t)
            return f, contour_data(f["xs"], f["ys"], [f["nld"]], f["levels"], ["μ_t"])

        self.worker.submit(
            f"mu_t at t = {t:.2f}",
            make,
            lambda made: self._show_t(*made),
            lambda exc: self._warn(f"Could not draw mu_t: {exc}."),
            lane="frame",
            key="t",
        )

    def _show_t(self, f: dict, contours: tuple) -> None:
        lines, labels = contours
        live = int(np.sum(np.asarray(f["mu"].weights) > 1e-4))
        with pn.io.hold():
            self.src["lines"].data = lines
            self.src["labels"].data = labels
            self.src["mu"].data = mixture_ellipses(f["mu"])
            self.src["points"].data = {"x": f["carried"][:, 0], "y": f["carried"][:, 1]}
        self.flow.mark_sent()
        k0, k1 = self._pair[2].shape
        self.counter.object = (
            f"**t** {f['t']:.2f} · **paths** {live} of {k0}×{k1} carry mass · "
            f"**MW2²** {self._mw2:.6g} · contours: -log density of mu_t · ellipses: "
            f"mu_0 = cloud 0's fit (blue, dashed), mu_1 (green, dashed), mu_t (red) · "
            f"orange: points carried by T"
        )

    # -- animation --------------------------------------------------------------------
    def _tick(self, clicked: bool = False) -> None:
        if self.worker.busy:
            return  # the last t is still being drawn
        t = self.w_t.value + 0.02 * self._direction
        if not 0.0 <= t <= 1.0:
            self._direction = -self._direction
            t = min(max(t, 0.0), 1.0)
        self.w_t.value = round(t, 2)  # draws through the slider's watcher

    # -- exports ----------------------------------------------------------------------
    def _map_file(self) -> io.StringIO:
        out = io.StringIO()
        out.write("x,y,Tx,Ty\n")
        np.savetxt(out, np.hstack([self._points, self._images]), fmt="%.9g", delimiter=",")
        out.seek(0)
        return out

    def _figure_file(self, fmt: str) -> io.BytesIO:
        return io.BytesIO(transport_figure(self._frame(), fmt))

    # -- layout -----------------------------------------------------------------------
    def sidebar(self) -> list:
        return [
            pn.pane.Markdown("### Interpolation"),
            self.controls,
            self.w_t,
            pn.pane.Markdown("### Map"),
            self.b_refresh,
            self.w_n,
            self.w_arrows,
            *self.export_section(),
        ]

    def __panel__(self):
        return self.main_column(self.counter, pn.pane.Bokeh(self.fig))
