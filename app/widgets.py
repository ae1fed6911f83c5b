"""A checkbox whose label is part of it: a click on the words toggles it.

Bokeh's ``Checkbox`` (Panel 1.9, Bokeh 3.9) draws its label as a separate ``div``, so a
click on the words does nothing and the box has no accessible name; a ``Switch`` has no
label at all, and a switch beside a Markdown label wraps in a narrow sidebar. This one
is a native ``<label><input type=checkbox> text</label>``, with no outside assets.
"""

from __future__ import annotations

import param
from panel.custom import JSComponent

__all__ = ["LabelledCheckbox"]


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
