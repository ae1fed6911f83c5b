"""Knobs declared once. Each run kind's continuous knobs are a ``param`` model
(:class:`Knobs`): per knob the default, the bounds, the label, the doc and the slider's
grid (``metadata["grid"]``). The run validates :meth:`Knobs.update` with it, the
parameter-file reader checks recorded values with it (:meth:`Knobs.check`), and the
screens build their controls and read URL parameters from it. ``param`` has no UI
dependency: the model lives on the host side, the widgets in ``app``.
"""

from __future__ import annotations

import math

import numpy as np
import param

from gmmot_runs.spec import SpecError

__all__ = ["Knobs", "Settings", "log_grid", "number"]


def log_grid(lo: int, hi: int, per_decade: int = 4, zero: bool = False) -> dict[str, float]:
    """``{label: value}`` from ``10^lo`` to ``10^hi``, ``per_decade`` values a decade
    (labels ``"0.001"``, ``"1.78"``), with ``"0": 0.0`` first when ``zero``."""
    vals = np.logspace(lo, hi, (hi - lo) * per_decade + 1)
    opts = {f"{v:.3g}": float(v) for v in vals}
    return ({"0": 0.0} | opts) if zero else opts


def number(default: float, bounds: tuple, label: str, doc: str, grid=None) -> param.Number:
    """A continuous knob: its default, bounds, label, doc and slider grid."""
    return param.Number(
        default, bounds=bounds, label=label, doc=doc, metadata={"grid": grid} if grid else None
    )


class Knobs(param.Parameterized):
    """A kind's continuous knobs: what moves while a run goes on, without a recompile."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(n for n in cls.param if n != "name")

    @classmethod
    def grid(cls, name: str) -> dict[str, float] | None:
        """The slider's ``{label: value}`` options of knob ``name`` (None: no grid)."""
        return (cls.param[name].metadata or {}).get("grid")

    @classmethod
    def check(cls, name: str, value, where: str | None = None):
        """``value`` as knob ``name``'s type within its bounds, or :class:`SpecError`
        naming ``where`` (default: the knob's name)."""
        return _checked(cls.param[name], value, where or f"knob {name!r}")

    def values(self) -> dict:
        """``{name: value}`` of every knob."""
        return {n: getattr(self, n) for n in self.names()}

    def update(self, **values) -> None:
        """Set knobs, all or none: an unknown name or a value outside its bounds raises
        :class:`SpecError` (a ``ValueError``) and changes nothing."""
        unknown = sorted(set(values) - set(self.names()))
        if unknown:
            raise SpecError(f"unknown knob {unknown[0]!r}")
        # the instance's parameters: their bounds, as a test may narrow or lift them
        checked = {n: _checked(self.param[n], v, f"knob {n!r}") for n, v in values.items()}
        self.param.update(**checked)


class Settings(Knobs):
    """A kind's structural settings (sizes, seeds, choices): a change builds a new run,
    and a new shape may compile. Checked, bounded and documented as the knobs are."""


def _checked(p: param.Parameter, value, where: str):
    if isinstance(p, param.Selector):
        if value not in p.objects:
            options = ", ".join(str(o) for o in p.objects)
            raise SpecError(f"{where}: expected one of {options}, got {value!r:.40}")
        return value
    if isinstance(p, param.Boolean):
        if not isinstance(value, bool):
            raise SpecError(f"{where}: expected true or false, got {value!r:.40}")
        return value
    integer = isinstance(p, param.Integer)
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or (integer and not float(value).is_integer()):
        want = "an integer" if integer else "a number"
        raise SpecError(f"{where}: expected {want}, got {value!r:.40}")
    if not math.isfinite(value):
        raise SpecError(f"{where}: expected a finite number, got {value}")
    lo, hi = p.bounds or (None, None)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        span = ", ".join(
            "inf" if b is None else f"{b:d}" if integer else f"{b:g}" for b in (lo, hi)
        )
        raise SpecError(f"{where}: {value:g} is outside [{span}]")
    return int(value) if integer else float(value)
