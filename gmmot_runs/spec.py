"""The parameter-file envelope shared by run kinds: ``{"kind", "version", ...fields}``,
read with field-named errors (``field 'k': 12 is outside [1, 8]``)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

__all__ = ["SpecError", "choice", "envelope", "integer", "number", "points"]


class SpecError(ValueError):
    """A parameter file that cannot be run; the message names the field."""


def envelope(raw: bytes | str, kind: str, version: int) -> dict:
    """The JSON object of a parameter file of ``kind`` at ``version``."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SpecError(f"not a JSON parameter file ({exc})") from None
    if not isinstance(obj, dict):
        raise SpecError("expected a JSON object")
    if obj.get("kind") != kind:
        raise SpecError(f"field 'kind': expected {kind!r}, got {obj.get('kind')!r}")
    if obj.get("version") != version:
        raise SpecError(f"field 'version': expected {version}, got {obj.get('version')!r}")
    return obj


def integer(obj: dict, name: str, lo: int, hi: int, default: int | None = None) -> int:
    """``obj[name]`` as an int in ``[lo, hi]`` (``default`` when absent, if given)."""
    value = obj.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecError(f"field {name!r}: expected an integer, got {value!r}")
    if not lo <= value <= hi:
        raise SpecError(f"field {name!r}: {value} is outside [{lo}, {hi}]")
    return value


def number(obj: dict, name: str, lo: float, hi: float, default: float | None = None) -> float:
    """``obj[name]`` as a finite float in ``[lo, hi]``."""
    value = obj.get(name, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not np.isfinite(value):
        raise SpecError(f"field {name!r}: expected a finite number, got {value!r}")
    if not lo <= value <= hi:
        raise SpecError(f"field {name!r}: {value} is outside [{lo:g}, {hi:g}]")
    return float(value)


def choice(obj: dict, name: str, options, default: Any = None) -> Any:
    """``obj[name]``, one of ``options``."""
    value = obj.get(name, default)
    if value not in options:
        raise SpecError(f"field {name!r}: {value!r} is not one of {list(options)}")
    return value


def points(obj: dict, name: str, max_rows: int) -> np.ndarray:
    """``obj[name]`` as finite ``[N, 2]`` float64 with ``2 <= N <= max_rows``."""
    try:
        p = np.asarray(obj.get(name), np.float64)
    except (TypeError, ValueError):
        raise SpecError(f"field {name!r}: expected a list of [x, y] rows") from None
    if p.ndim != 2 or p.shape[1] != 2 or not 2 <= len(p) <= max_rows:
        raise SpecError(f"field {name!r}: expected 2 to {max_rows} rows of [x, y]")
    if not np.all(np.isfinite(p)):
        raise SpecError(f"field {name!r}: coordinates must be finite")
    return p
