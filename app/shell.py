"""The page: a template with the explorer's screens. Built fresh for every browser session."""

from __future__ import annotations

from functools import partial
from typing import ClassVar

import panel as pn
from panel.theme import fast as fast_design

from gmmot.knobs import knobs_from_url, set_widgets
from gmmot.lazy import LazyColumn, serve_stylesheets_here
from gmmot.models import DataSource
from gmmot.screens.barycenter import BarycenterScreen
from gmmot.screens.coupled_em import CoupledEMScreen
from gmmot.screens.descent import DescentScreen
from gmmot.screens.transport import TransportScreen
from gmmot.screens.w2_fit import W2FitScreen
from gmmot.upload import upload_hooks, upload_hooks_on


def _page(screen) -> list:
    """A screen's tab: what to try first, the details folded, then the screen, all as wide
    as the window allows."""
    details = pn.Card(
        pn.pane.Markdown(screen.about, sizing_mode="stretch_width"),
        title="details",
        collapsed=True,
        sizing_mode="stretch_width",
    )
    return [
        pn.pane.Markdown(f"**Try first:** {screen.try_first}", sizing_mode="stretch_width"),
        details,
        screen,
    ]


class Fast(fast_design.Fast):
    """Panel's Fast design without its web font (Open Sans from fonts.googleapis.com):
    every resource of the page is served by the app, which may have no internet. (The
    class keeps the name ``Fast``: Panel finds a design's bundled files by it.)"""

    _resources: ClassVar[dict] = {
        k: v for k, v in fast_design.Fast._resources.items() if k != "font"
    }


SYSTEM_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


# the screens of a page, in the order of its tabs
SCREENS = (CoupledEMScreen, DescentScreen, BarycenterScreen, TransportScreen, W2FitScreen)


def build(autoplay: bool = True) -> pn.template.FastListTemplate:
    """A new page (template + screens) for one session."""
    args = pn.state.session_args if pn.state.curdoc is not None else {}
    serve_stylesheets_here(pn.state.curdoc)  # before any model is made
    kinds = [c.kind for c in SCREENS]
    tab, tab_refused = _tab_from_url(args, kinds)
    # the first tab's bare URL names are its data's; another tab's are its own
    data, refused = _data_from_url(args) if tab == kinds[0] else (DataSource(), [])
    screen = CoupledEMScreen(data=data)
    pair = lambda: (screen.run.view["gmm0"], screen.run.view["gmm1"])  # noqa: E731
    descent = DescentScreen(pair_source=pair)
    barycenter = BarycenterScreen(pair_source=pair)
    transport = TransportScreen(source=lambda: (screen.run.view, screen.run.points0))
    w2_fit = W2FitScreen()
    screens = (screen, descent, barycenter, transport, w2_fit)  # the tabs, in order
    assert tuple(type(s) for s in screens) == SCREENS
    opened = kinds.index(tab)
    # only the opened tab and its sidebar are made with the page, each other on its first
    # opening (gmmot.lazy)
    pages = [
        LazyColumn(partial(_page, s), shown=i == opened, sizing_mode="stretch_width")
        for i, s in enumerate(screens)
    ]
    tabs = pn.Tabs(
        *((s.title, p) for s, p in zip(screens, pages, strict=True)), sizing_mode="stretch_width"
    )
    active = tabs.param.active.rx()
    sidebars = [
        LazyColumn(s.sidebar, shown=i == opened, visible=active == i) for i, s in enumerate(screens)
    ]
    upload_hooks_on(tabs)  # the upload boxes of a sidebar made on its tab's first opening
    tabs.param.watch(_TabSwitch(screens, pages, sidebars), "active")
    page = pn.template.FastListTemplate(
        title="gmmot — GMM optimal transport explorer",
        sidebar=sidebars,
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
    tab = screens[opened]
    tabs.active = opened  # the tab's screen opens (and prepares what it shows)
    refused_before = {screen: [*tab_refused, *refused]}
    _knobs_from_url(args, [s for s in screens if s.Knobs is not None], refused_before, tab)
    if pn.state.curdoc is not None:
        upload_hooks(pn.state.curdoc)
    if autoplay and tab is screen and pn.state.curdoc is not None:
        pn.state.onload(screen._play)
    return page


class _TabSwitch:
    """On a tab change: the tab left pauses if it was playing (a hidden animation takes
    the session's share of the server for frames nobody sees) and plays again when it is
    shown again; the tab opened gets its page and sidebar (made on its first opening) and
    refreshes what it reads from the others (``opened``)."""

    def __init__(self, screens: tuple, pages: list[LazyColumn], sidebars: list[LazyColumn]):
        self.screens, self.pages, self.sidebars, self.resume = screens, pages, sidebars, set()

    def __call__(self, event) -> None:
        if event.old is not None and self.screens[event.old].hide():
            self.resume.add(event.old)
        self.pages[event.new].fill()
        self.sidebars[event.new].fill()
        self.screens[event.new].opened()
        if event.new in self.resume:
            self.resume.discard(event.new)
            if not self.screens[event.new].playing:  # Play may have been pressed meanwhile
                self.screens[event.new]._play()


def _tab_from_url(args: dict, kinds: list[str]) -> tuple[str, list[str]]:
    """The kind of the screen the page opens on (``?tab=descent``), the first by
    default, and what was refused."""
    raw = args.get("tab")
    if not raw:
        return kinds[0], []
    text = raw[0].decode(errors="replace")
    if text in kinds:
        return text, []
    return kinds[0], [f"URL parameter tab={text}: expected one of {', '.join(kinds)}: ignored"]


def _knobs_from_url(args: dict, screens, refused_before: dict | None = None, tab=None) -> None:
    """Each screen's knobs and settings set from the page URL (``?coupled_em.epsilon=0.1
    &w2_fit.k=3``; the names alone for the ``tab`` opened, as ``?tab=descent&n=500
    &lr=50``, but on the first tab, whose bare names are its data's), checked by the
    kind's models; a refused value keeps the default and says why in the screen's own
    alert, after ``refused_before[screen]`` (a notification sent while the page is
    built never showed)."""
    for s in screens:
        bare = s is tab and s is not screens[0]
        values, refused = knobs_from_url(s.Knobs, s.kind, args, bare)
        for name, (asked, used) in set_widgets(s.knobs, values).items():
            refused.append(
                f"URL parameter {name}={asked:g}: its slider's nearest value {used:.3g} is used"
            )
        if s.Settings is not None:
            settings, refused_settings = knobs_from_url(s.Settings, s.kind, args, bare)
            set_widgets(s.settings, settings)
            refused += refused_settings
        refused = [*(refused_before or {}).get(s, []), *refused]
        if refused:  # after the rebuilds those values started, which clear the alert
            s.warn_after_work("; ".join(refused))


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
