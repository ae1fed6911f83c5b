"""Widgets the app needs beyond Panel's: a checkbox whose words toggle it, typed fields
that refuse out-of-range values aloud, a discrete slider whose label has one writer,
download buttons whose file is made on click.

A checkbox whose label is part of it: a click on the words toggles it.

Bokeh's ``Checkbox`` (Panel 1.9, Bokeh 3.9) draws its label as a separate ``div``, so a
click on the words does nothing and the box has no accessible name; a ``Switch`` has no
label at all, and a switch beside a Markdown label wraps in a narrow sidebar. This one
is a native ``<label><input type=checkbox> text</label>``, with no outside assets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import panel as pn
import param
from panel.custom import JSComponent

__all__ = [
    "BoundedFloatInput",
    "BoundedIntInput",
    "LabelledCheckbox",
    "OptionSlider",
    "download_buttons",
]


class LabelledCheckbox(JSComponent):
    """``value`` (bool), ``label`` (the words beside the box); watched like a widget."""

    value = param.Boolean(default=False, doc="Whether the box is ticked.")
    label = param.String(default="", doc="The words beside the box; clicking them toggles.")
    disabled = param.Boolean(default=False, doc="Whether the box takes clicks.")

    _esm = """
export function render({ model }) {
  const label = document.createElement("label")
  label.style.cssText =
    "display: flex; align-items: center; gap: 6px; cursor: pointer; margin: 5px 10px;"
  const box = document.createElement("input")
  box.type = "checkbox"
  const text = document.createElement("span")
  const sync = () => {
    box.checked = model.value
    box.disabled = model.disabled
    text.textContent = model.label
  }
  sync()
  box.addEventListener("change", () => { model.value = box.checked })
  model.on(["value", "label", "disabled"], sync)
  label.append(box, text)
  return label
}
"""


def _num(v) -> str:
    """``1,000,000`` for whole numbers, ``0.001`` / ``1e+06`` style otherwise."""
    return f"{int(v):,}" if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


class _Bounded:
    """Mixin for Panel's numeric inputs: a value typed in the browser outside
    ``start``-``end`` (or an empty field) never reaches ``value`` or any watcher; the
    field is put back to the last good value and ``warn`` (when set) says the range.

    The bounds stay on the server: given ``low`` / ``high``, Bokeh's field keeps showing an
    out-of-range value and never sends it, so nobody could say it was refused."""

    def _process_property_change(self, msg):
        msg = super()._process_property_change(msg)
        if "value" in msg and not self._fits(msg["value"]):
            self._refuse(msg.pop("value"))
        return msg

    def _fits(self, v) -> bool:
        lo, hi = self.start, self.end
        return v is not None and (lo is None or v >= lo) and (hi is None or v <= hi)

    def _refuse(self, v) -> None:
        label = self.label or self.name
        lo, hi = self.start, self.end
        words = (
            f"{label}: {v} refused; it must lie in {_num(lo)}-{_num(hi)}. Kept {_num(self.value)}."
        )
        if self.warn is not None:
            self.warn(words)
        doc = pn.state.curdoc
        models = [m for m, _ in self._models.values()]

        def put_back() -> None:  # the browser still shows the refused value
            for m in models:
                m.value = self.value

        if doc is not None and doc.session_context is not None:
            doc.add_next_tick_callback(put_back)
        else:
            put_back()


class BoundedIntInput(_Bounded, pn.widgets.IntInput):
    """``IntInput`` that refuses out-of-range typing aloud (see :class:`_Bounded`)."""

    warn = param.Callable(default=None, doc="Called with the refusal's words.")

    _rename: ClassVar[dict] = {
        **pn.widgets.IntInput._rename,
        "warn": None,
        "start": None,
        "end": None,
    }


class BoundedFloatInput(_Bounded, pn.widgets.FloatInput):
    """``FloatInput`` that refuses out-of-range typing aloud (see :class:`_Bounded`)."""

    warn = param.Callable(default=None, doc="Called with the refusal's words.")

    _rename: ClassVar[dict] = {
        **pn.widgets.FloatInput._rename,
        "warn": None,
        "start": None,
        "end": None,
    }


class OptionSlider(pn.widgets.DiscreteSlider):
    """Panel's ``DiscreteSlider`` with its label written by the server alone.

    Panel writes the label twice: in the browser (a JS link from the inner slider) and on
    the server (on each value). A fast drag while the server was busy left it stale: the
    browser's own write (1.78) reached the server's model first, so the server's later
    write of the same text was no change and was never sent, after a late write of an
    earlier value (0.316) had been. With one writer the last value's label always
    arrives (a moment after the handle, when the server is busy)."""

    def _update_options(self, *events):
        super()._update_options(*events)
        self._jslink.unwatch()


def download_buttons(items: list[tuple[Callable, str, str]]) -> list[pn.widgets.FileDownload]:
    """One full-width download button per ``(callback, filename, label)``; the file is
    made by the callback when clicked (``embed=False``)."""
    return [
        pn.widgets.FileDownload(
            callback=cb, filename=name, label=label, embed=False, sizing_mode="stretch_width"
        )
        for cb, name, label in items
    ]
