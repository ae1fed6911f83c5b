"""Controls built from a run kind's knob and settings models (:class:`gmmot_runs.knobs.
Knobs`, :class:`~gmmot_runs.knobs.Settings`): one widget per knob or setting with the
model's label, bounds, grid and value; the values the page URL gives them."""

from __future__ import annotations

import numpy as np
import panel as pn
import param

from gmmot.widgets import BoundedFloatInput, BoundedIntInput, LabelledCheckbox, OptionSlider
from gmmot_runs.knobs import Knobs, Settings
from gmmot_runs.spec import SpecError

__all__ = ["knob_widgets", "knobs_from_url", "nearest", "set_widgets", "setting_widgets"]


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


def setting_widgets(settings: Settings, warn, sliders=(), options=None) -> dict:
    """``{name: widget}`` for every setting of ``settings``, set to its value: a select
    for a choice (``options[name]``: its options, if more than the model's), a slider
    for the names in ``sliders``, else a field that refuses out-of-range typing aloud
    (``warn``); an integer field with a small range names it in its label."""
    out, options = {}, options or {}
    for name in settings.names():
        p, value = settings.param[name], getattr(settings, name)
        if isinstance(p, param.Selector):
            w = pn.widgets.Select(label=p.label, options=options.get(name, p.objects), value=value)
        elif name in sliders:
            w = pn.widgets.IntSlider(label=p.label, start=p.bounds[0], end=p.bounds[1], value=value)
        elif isinstance(p, param.Integer):
            lo, hi = p.bounds
            label = p.label if hi >= 2**31 - 1 else f"{p.label} ({lo}-{hi})"
            w = BoundedIntInput(warn=warn, label=label, value=value, start=lo, end=hi)
        else:
            lo, hi = p.bounds
            w = BoundedFloatInput(warn=warn, label=p.label, value=value, start=lo, end=hi)
        out[name] = w
    return out


_BOOLEAN = {"true": True, "1": True, "false": False, "0": False}


def knobs_from_url(model: type[Knobs], kind: str, args: dict, bare: bool = False):
    """Values of ``model``'s knobs (or settings) from the page URL's query ``args``
    (``{"coupled_em.epsilon": [b"0.1"]}``: the run kind, a dot, the name; the name alone
    too when ``bare``), checked by the model (its bounds, choices and messages); returns
    ``(values, refused)``, one message per value refused."""
    values, refused = {}, []
    for name in model.names():
        key = next((k for k in (f"{kind}.{name}", name if bare else None) if args.get(k)), None)
        if key is None:
            continue
        text = args[key][0].decode(errors="replace")
        try:
            value = _parsed(model.param[name], text)
            values[name] = model.check(name, value, f"URL parameter {key}={text}")
        except SpecError as exc:
            refused.append(f"{exc}: ignored")
        except ValueError:  # float("x")
            refused.append(f"URL parameter {key}={text}: expected a number: ignored")
    return values, refused


def _parsed(p: param.Parameter, text: str):
    """URL text as the parameter's kind of value (a number, a switch or a choice)."""
    if isinstance(p, param.Boolean):
        return _BOOLEAN.get(text.lower(), text)
    if isinstance(p, param.Selector):
        if all(isinstance(o, int) for o in p.objects):
            number = float(text)
            return int(number) if number.is_integer() else number
        return text
    return float(text)


def set_widgets(widgets: dict, values: dict) -> dict[str, tuple]:
    """Put ``values`` in the knob or settings ``widgets`` (a grid's slider takes the
    nearest option); returns ``{name: (asked, used)}`` of the values a grid moved."""
    moved = {}
    for name, value in values.items():
        w = widgets[name]
        used = nearest(w.options, value) if isinstance(w, OptionSlider) else value
        # a slider acts on release (value_throttled), which a value set here is too
        if "value_throttled" in w.param and not isinstance(w, OptionSlider):
            with param.edit_constant(w):  # set by the browser only, but for this
                w.param.update(value=used, value_throttled=used)
        else:
            w.value = used
        if used != value:
            moved[name] = (value, used)
    return moved
