"""Slider grids for continuous knobs: log-spaced options and the nearest option to a value."""

from __future__ import annotations

import numpy as np

__all__ = ["log_options", "nearest"]


def log_options(lo: int, hi: int, per_decade: int = 4, zero: bool = False) -> dict[str, float]:
    """``{label: value}`` from ``10^lo`` to ``10^hi``, ``per_decade`` values a decade
    (labels ``"0.001"``, ``"1.78"``), with ``"0": 0.0`` first when ``zero``."""
    vals = np.logspace(lo, hi, (hi - lo) * per_decade + 1)
    opts = {f"{v:.3g}": float(v) for v in vals}
    return ({"0": 0.0} | opts) if zero else opts


def nearest(options: dict[str, float], value: float) -> float:
    """The option closest to ``value`` on a log scale (0 counts as 1e-30)."""
    vals = np.array(list(options.values()))
    logs = np.log10(np.maximum(vals, 1e-30))
    return float(vals[np.argmin(np.abs(logs - np.log10(max(value, 1e-30))))])
