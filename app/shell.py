"""The page: a template with one tab per screen. Built fresh for every browser session."""

from __future__ import annotations

import panel as pn

from app.screens.fit import IndependentFitScreen

ABOUT = """
**gmmot** explores optimal transport between 2D point clouds and the Gaussian
mixtures fitted to them. The demo pair below is drawn from the two generator
mixtures of the *Fitting Coupled GMMs* notebook; each cloud has its own EM fit
(points coloured by most likely component; solid 1-sigma and dashed 2-sigma
ellipses, opacity by component weight).
"""


def build() -> pn.template.FastListTemplate:
    """A new page (template + screens) for one session."""
    fit = IndependentFitScreen()
    return pn.template.FastListTemplate(
        title="gmmot — GMM optimal transport explorer",
        sidebar=[*fit.sidebar()],
        main=[pn.pane.Markdown(ABOUT, sizing_mode="stretch_width"), fit],
        accent="#1f77b4",
        theme_toggle=False,
    )
