"""Layouts whose Bokeh models are made when first shown, not with the page.

A new browser session waited for its whole page, every tab's figures and widgets (~1,200
Bokeh models, 2-6 s of server time before the first frame); the page now ships the open
tab and its sidebar, and each other tab's page and sidebar are made on its first opening
(:class:`LazyColumn`; Panel's dynamic tabs would also take a tab's models off the page
each time it is left, to send them again when it is shown).

Panel points its components' stylesheets at its CDN and rewrites them to the server's own
copy for the models of the first render only (``server_html_page_for_session``); a
stylesheet first used by a model made later would load from cdn.holoviz.org, which an
offline server cannot reach. The layouts here rewrite the models they make later
(``panel.io.resources.patch_model_css``), and :func:`serve_stylesheets_here` makes the
session's stylesheet cache rewrite every stylesheet it is given afterwards (a model a
screen adds later, such as a first alert). It also mends a fallback of Panel 1.9: a
property update of a model not yet in a document (a tab's model between its making and
its attachment) rewrites its stylesheets, which a session's models share, back to the
CDN (``panel.reactive.CDN_DIST``); five of six openings of the barycenter tab asked
cdn.holoviz.org for two sheets, none once the fallback names the server's copy.
"""

from __future__ import annotations

import weakref

import panel as pn
import panel.reactive
from panel.io.resources import LOCAL_DIST, patch_model_css, patch_stylesheet
from panel.io.state import state

__all__ = ["LazyColumn", "serve_stylesheets_here"]


class _ServedSheets(dict):
    """A session's stylesheet cache (url -> ImportedStyleSheet, Panel's
    ``state._stylesheets[doc]``) that points each stylesheet added at the server's copy,
    once the page has said where that is (its ``dist_url``)."""

    def __init__(self, doc, sheets: dict):
        super().__init__(sheets)
        self._doc = weakref.ref(doc)  # the cache is held in a weak dict keyed by doc

    def __setitem__(self, url, sheet) -> None:
        doc = self._doc()
        dist_url = None if doc is None else doc._template_variables.get("dist_url")
        if dist_url:
            patch_stylesheet(sheet, dist_url)
        super().__setitem__(url, sheet)


def _served_here(models, doc) -> None:
    """Point the stylesheets of ``models`` (and of the models under them) at the server's
    copy, as Panel does for the first render."""
    dist_url = None if doc is None else doc._template_variables.get("dist_url")
    if dist_url:
        for sheet in list(state._stylesheets.get(doc, {}).values()):
            patch_stylesheet(sheet, dist_url)  # the session's cached sheets the models reuse
        for model in models:
            patch_model_css(model, dist_url=dist_url)


def serve_stylesheets_here(doc) -> None:
    """In a server session: make ``doc``'s stylesheet cache a :class:`_ServedSheets`, and
    the fallback of property updates the server's copy (see the module docstring)."""
    if doc is None or doc.session_context is None:
        return
    state._stylesheets[doc] = _ServedSheets(doc, state._stylesheets.get(doc, {}))
    panel.reactive.CDN_DIST = f"{state.rel_path}/{LOCAL_DIST}" if state.rel_path else LOCAL_DIST


class LazyColumn(pn.Column):
    """:class:`panel.Column` that is given its objects by :meth:`fill` when first shown
    (``make()`` builds them)."""

    def __init__(self, make, shown: bool, **params):
        self._make = make
        super().__init__(*(make() if shown else ()), **params)
        self._filled = shown

    def fill(self) -> None:
        """Make and show the objects (once)."""
        if not self._filled:
            self._filled = True
            self.objects = list(self._make())

    def _get_objects(self, model, old_objects, doc, root, comm=None):
        new, old = super()._get_objects(model, old_objects, doc, root, comm)
        _served_here(new, doc)
        return new, old
