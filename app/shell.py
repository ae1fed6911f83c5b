"""The page: a template with the explorer's screens. Built fresh for every browser session."""

from __future__ import annotations

from typing import ClassVar

import panel as pn
from panel.theme import fast as fast_design

from app.knobs import knobs_from_url, set_widgets
from app.models import DataSource
from app.screens.barycenter import BarycenterScreen
from app.screens.coupled_em import CoupledEMScreen
from app.screens.descent import DescentScreen
from app.screens.transport import TransportScreen
from app.screens.w2_fit import W2FitScreen
from app.upload import upload_hooks

ABOUT = """
**Coupled EM** fits one Gaussian mixture per cloud while penalising the entropic
(unbalanced) GMM-OT distance between them (Delon & Desolneux 2020; OTT-JAX
``fit_gmm_pair``). The demo pair is drawn from the two generator mixtures of the
*Fitting Coupled GMMs* notebook; both fits start from one mixture fitted to the pooled
points. Points are coloured by their most likely component; solid 1-sigma and dashed
2-sigma ellipses, opacity by weight. Links join coupled components (width by mass).
"""


DESCENT_ABOUT = """
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


BARYCENTER_ABOUT = """
**GMM barycenter**: the free-support Wasserstein barycenter of several Gaussian mixtures
under the Bures (W2 between Gaussians) cost, as OTT-JAX's ``FreeWassersteinBarycenter``
and its *GMM barycenters* notebook: a support of ``bar_size`` Gaussians with uniform
weights; each iteration solves entropic OT from the support to every input and moves
every support Gaussian to the Bures barycenter of its transport rows. Contours are the
``-log`` densities at log-spaced levels; red ellipses are the support (1 sigma). Moving a
weight or epsilon restarts the iterations from the current support (no recompile).
"""


TRANSPORT_ABOUT = """
**Transport map** of the current coupled-EM pair (refreshed each time this tab opens):
grey arrows send a subsample of cloud 0 to its image under Delon & Desolneux's GMM-OT
map ``T_mean``; dashed ellipses are the two fitted mixtures (blue: cloud 0, green: cloud
1). The displacement interpolation ``mu_t`` mixes the W2 geodesics of the coupled
component pairs, weighted by the normalised coupling: its ``-log`` density contours and
red ellipses move with t, and the orange points are carried along the map,
``(1 - t) x + t T(x)``.
"""


W2FIT_ABOUT = """
**Fit GMM by W2** fits K Gaussians to a cloud by descending the exact semi-discrete W2²
between the points and the mixture (sdot tutorial's last section; Adam on the mixture's
unconstrained parameters, gradients through every pixel of the mixture's raster). EM's
maximum-likelihood fit from the same kmeans++ start is drawn dashed.
The box around the points is rastered; the fit's objective is W2² to the mixture inside
the box plus the mass it puts outside (charged at the box side squared).
"""

# two lines a first-time user reads before anything else (the jargon is under "details")
TRY_FIRST = {
    "coupled": "Two clouds, one mixture fitted to each, pulled together by optimal transport. "
    "It opens balanced (no mass created or destroyed): drag **epsilon** and watch the "
    "links. Then untick **balanced** and drag **rho**: the reweighting bars show which "
    "populations grow or shrink.",
    "descent": "Points move until each owns an equal share of the picture's mass. Press "
    "**Play**; then upload a picture of your own (dark = more mass) or raise **N**.",
    "barycenter": "The average of several mixtures in the optimal-transport sense. Drag a "
    "**weight** slider: the barycenter's contours slide towards that input.",
    "transport": "Where the transport sends each point of cloud 0, and the mixtures in "
    "between. Press **Play** or drag **t** from 0 to 1.",
    "w2_fit": "Fit a mixture by optimal transport instead of likelihood. Press **Play**: "
    "EM (dashed) bends towards the far clump; the W2 fit keeps its mass on the data.",
}


def _page(try_first: str, about: str, screen) -> pn.Column:
    """A tab: what to try first, the details folded, then the screen, all as wide as the
    window allows."""
    details = pn.Card(
        pn.pane.Markdown(about, sizing_mode="stretch_width"),
        title="details",
        collapsed=True,
        sizing_mode="stretch_width",
    )
    return pn.Column(
        pn.pane.Markdown(f"**Try first:** {try_first}", sizing_mode="stretch_width"),
        details,
        screen,
        sizing_mode="stretch_width",
    )


class Fast(fast_design.Fast):
    """Panel's Fast design without its web font (Open Sans from fonts.googleapis.com):
    every resource of the page is served by the app, which may have no internet. (The
    class keeps the name ``Fast``: Panel finds a design's bundled files by it.)"""

    _resources: ClassVar[dict] = {
        k: v for k, v in fast_design.Fast._resources.items() if k != "font"
    }


SYSTEM_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


def build(autoplay: bool = True) -> pn.template.FastListTemplate:
    """A new page (template + screens) for one session."""
    args = pn.state.session_args if pn.state.curdoc is not None else {}
    data, refused = _data_from_url(args)
    screen = CoupledEMScreen(data=data)
    pair = lambda: (screen.run.view["gmm0"], screen.run.view["gmm1"])  # noqa: E731
    descent = DescentScreen(pair_source=pair)
    barycenter = BarycenterScreen(pair_source=pair)
    transport = TransportScreen(source=lambda: (screen.run.view, screen.run.points0))
    w2_fit = W2FitScreen()
    tabs = pn.Tabs(
        ("Coupled EM", _page(TRY_FIRST["coupled"], ABOUT, screen)),
        ("Dirac descent", _page(TRY_FIRST["descent"], DESCENT_ABOUT, descent)),
        ("GMM barycenter", _page(TRY_FIRST["barycenter"], BARYCENTER_ABOUT, barycenter)),
        ("Transport map", _page(TRY_FIRST["transport"], TRANSPORT_ABOUT, transport)),
        ("Fit GMM by W2", _page(TRY_FIRST["w2_fit"], W2FIT_ABOUT, w2_fit)),
        # every tab's models made with the page: Panel 1.9 points the stylesheets of models
        # a dynamic tab makes on its first opening at cdn.holoviz.org (not offline)
        dynamic=False,
        sizing_mode="stretch_width",
    )
    active = tabs.param.active.rx()
    tabs.param.watch(
        _TabSwitch(
            (screen, descent, barycenter, transport, w2_fit),
            {
                1: descent.refresh_fit,
                2: barycenter.refresh_pair,
                3: transport.refresh,
                4: w2_fit.opened,
            },
        ),
        "active",
    )
    page = pn.template.FastListTemplate(
        title="gmmot — GMM optimal transport explorer",
        sidebar=[
            pn.Column(*screen.sidebar(), visible=active == 0),
            pn.Column(*descent.sidebar(), visible=active == 1),
            pn.Column(*barycenter.sidebar(), visible=active == 2),
            pn.Column(*transport.sidebar(), visible=active == 3),
            pn.Column(*w2_fit.sidebar(), visible=active == 4),
        ],
        main=[tabs],
        accent="#1f77b4",
        design=Fast,
        font=SYSTEM_FONT,
        theme_toggle=False,
        sidebar_width=340,
        # Panel's busy spinner is one process-wide state shown on every tab: each event of
        # any session (a frame echo) updated the spinner of every other session, which
        # took ~40% of the event loop with 8 sessions playing. Each screen's notice tells
        # its own session what runs instead.
        busy_indicator=None,
    )
    _knobs_from_url(args, (screen, descent, barycenter, w2_fit), {screen: refused})
    if pn.state.curdoc is not None:
        upload_hooks(pn.state.curdoc)
    if autoplay and pn.state.curdoc is not None:
        pn.state.onload(screen._play)
    return page


class _TabSwitch:
    """On a tab change: the tab left pauses if it was playing (a hidden animation takes
    the session's share of the server for frames nobody sees) and plays again when it is
    shown again; the tab opened refreshes what it reads from the others."""

    def __init__(self, screens: tuple, on_open: dict):
        self.screens, self.on_open, self.resume = screens, on_open, set()

    def __call__(self, event) -> None:
        if event.old is not None and self.screens[event.old].hide():
            self.resume.add(event.old)
        if event.new in self.on_open:
            self.on_open[event.new]()
        if event.new in self.resume:
            self.resume.discard(event.new)
            if not self.screens[event.new].playing:  # Play may have been pressed meanwhile
                self.screens[event.new]._play()


def _knobs_from_url(args: dict, screens, refused_before: dict | None = None) -> None:
    """Each screen's knobs set from the page URL (``?coupled_em.epsilon=0.1&w2_fit.
    learning_rate=0.05``), checked by the kind's knob model; a refused value keeps the
    default and says why in the screen's own alert, after ``refused_before[screen]``
    (a notification sent while the page is built never showed)."""
    for s in screens:
        values, refused = knobs_from_url(s.Knobs, s.kind, args)
        set_widgets(s.knobs, values)
        refused = [*(refused_before or {}).get(s, []), *refused]
        if refused:
            s._warn("; ".join(refused))


def _data_from_url(args: dict) -> tuple[DataSource, list[str]]:
    """A data source set from the page URL (``?preset=random+pair&n=10000&seed=3``) and
    what was refused: values that do not fit the parameter's type or bounds (their
    defaults kept)."""
    src, refused = DataSource(), []
    for name in ("preset", "n", "seed", "shift", "rotation", "reweight"):
        raw = args.get(name)
        if not raw:
            continue
        text = raw[0].decode(errors="replace")
        try:
            kind = type(src.param[name].default)
            src.param.update({name: kind(float(text)) if kind is not str else text})
        except (ValueError, TypeError):
            refused.append(f"URL parameter {name}={text}: not a valid value: ignored")
    return src, refused
