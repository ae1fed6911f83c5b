"""Controls built from a run kind's knob model (:class:`gmmot_runs.knobs.Knobs`): one
widget per knob with the model's label, bounds, grid and value, and the nearest option
of a grid to a value."""

from __future__ import annotations

import numpy as np
import panel as pn
import param

from app.widgets import LabelledCheckbox, OptionSlider
from gmmot_runs.knobs import Knobs
from gmmot_runs.spec import SpecError

__all__ = ["knob_widgets", "knobs_from_url", "nearest", "set_widgets"]


def nearest(options: dict[str, float], value: float) -> float:
    """The option closest to ``value`` on a log scale (0 counts as 1e-30)."""
    vals = np.array(list(options.values()))
    logs = np.log10(np.maximum(vals, 1e-30))
    return float(vals[np.argmin(np.abs(logs - np.log10(max(value, 1e-30))))])


def knob_widgets(knobs: Knobs) -> dict[str, pn.viewable.Viewable]:
    """``{name: widget}`` for every knob of ``knobs``, set to its value: a checkbox for a
    switch, an option slider over the knob's grid, else a slider over its bounds."""
    out = {}
    for name in knobs.names():
        p, value = knobs.param[name], getattr(knobs, name)
        grid = knobs.grid(name)
        if isinstance(p, param.Boolean):
            w = LabelledCheckbox(label=p.label, value=value)
        elif grid is not None:
            w = OptionSlider(label=p.label, options=grid, value=nearest(grid, value))
        elif isinstance(p, param.Integer):
            w = pn.widgets.IntSlider(label=p.label, start=p.bounds[0], end=p.bounds[1], value=value)
        else:
            w = pn.widgets.FloatSlider(
                label=p.label, start=p.bounds[0], end=p.bounds[1], value=value
            )
        out[name] = w
    return out


_BOOLEAN = {"true": True, "1": True, "false": False, "0": False}


def knobs_from_url(model: type[Knobs], kind: str, args: dict) -> tuple[dict, list[str]]:
    """Knob values from the page URL's query ``args`` (``{"coupled_em.epsilon":
    [b"0.1"]}``: the run kind, a dot, the knob), checked by the model (its bounds and
    messages); returns the values and one message per value refused."""
    values, refused = {}, []
    for name in model.names():
        key = f"{kind}.{name}"
        if not args.get(key):
            continue
        text = args[key][0].decode(errors="replace")
        p = model.param[name]
        try:
            if isinstance(p, param.Boolean):
                value = _BOOLEAN.get(text.lower(), text)
            else:
                value = float(text)
            values[name] = model.check(name, value, f"URL parameter {key}={text}")
        except SpecError as exc:
            refused.append(f"{exc}: ignored")
        except ValueError:  # float("x")
            refused.append(f"URL parameter {key}={text}: expected a number: ignored")
    return values, refused


def set_widgets(widgets: dict, values: dict) -> None:
    """Put ``values`` in the knob ``widgets`` (a grid's slider takes the nearest option)."""
    for name, value in values.items():
        w = widgets[name]
        w.value = nearest(w.options, value) if isinstance(w, OptionSlider) else value
