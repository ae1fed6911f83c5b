"""Reading parameter files: one envelope and typed field readers, every error names its
field (``field 'segments[2].tau': expected a number``, ``unknown field 'data.pionts0'``).

Every run kind's parameter file is a JSON object ``{"kind", "version", "gmmot", ...fields}``
(:func:`write`; ``gmmot`` is the library version that wrote it). Files are written at
:data:`VERSION` and read back to version 1: version 2 changed only the segments
(:mod:`gmmot_runs.segments`). Coupled EM's older ``{"format": "gmmot.coupled_em.run",
"library_version", ...}`` is read as kind ``coupled_em`` (:func:`current`, the one place
that knows it). :class:`SpecError` is a ``ValueError``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

__all__ = [
    "VERSION",
    "Fields",
    "SpecError",
    "choice",
    "current",
    "envelope",
    "integer",
    "kind_of",
    "matrix",
    "mixture",
    "number",
    "points",
    "write",
]

COUPLED_EM_FORMAT = "gmmot.coupled_em.run"
VERSION = 2  # the parameter files' version, every kind (1: one row per frame)


class SpecError(ValueError):
    """A parameter file that cannot be run; the message names the field."""


def decode(raw: bytes | str) -> dict:
    """The JSON object of a parameter file."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SpecError(f"not a JSON parameter file ({exc})") from None
    if not isinstance(obj, dict):
        raise SpecError("expected a JSON object")
    return obj


def write(kind: str, body: dict) -> str:
    """The JSON text of a parameter file: the envelope, then ``body``'s fields."""
    from gmmot_core import __version__

    return json.dumps({"kind": kind, "version": VERSION, "gmmot": __version__, **body})


def current(obj: dict) -> dict:
    """A decoded parameter file in today's envelope (an older coupled-EM file's
    ``format`` and ``library_version`` become ``kind`` and ``gmmot``)."""
    if obj.get("format") != COUPLED_EM_FORMAT:
        return obj
    out = {k: v for k, v in obj.items() if k not in ("format", "library_version")}
    out = {"kind": "coupled_em", **out}
    if "library_version" in obj:
        out["gmmot"] = obj["library_version"]
    return out


def kind_of(obj: dict) -> str | None:
    """The run kind a decoded parameter file names."""
    kind = current(obj).get("kind")
    return kind if isinstance(kind, str) else None


def envelope(raw: bytes | str | dict, kind: str) -> dict:
    """The JSON object of a parameter file of ``kind``, version 1 to :data:`VERSION`
    (:func:`current`)."""
    obj = current(raw if isinstance(raw, dict) else decode(raw))
    if obj.get("kind") != kind:
        raise SpecError(f"field 'kind': expected {kind!r}, got {obj.get('kind')!r}")
    v = obj.get("version")
    number = isinstance(v, int) and not isinstance(v, bool)
    if number and v > VERSION:
        raise SpecError(
            f"field 'version': {v} is newer than this gmmot understands ({VERSION}); upgrade gmmot"
        )
    if not number or v < 1:
        raise SpecError(f"field 'version': expected 1 to {VERSION}, got {v!r}")
    if not isinstance(obj.get("gmmot", ""), str):
        raise SpecError(f"field 'gmmot': expected a version string, got {obj['gmmot']!r:.40}")
    return obj


def known(obj: dict, names: set[str], prefix: str = "") -> None:
    """Refuse a field outside ``names`` (a typo must not be silently ignored)."""
    unknown = sorted(set(obj) - set(names))
    if unknown:
        raise SpecError(f"unknown field '{prefix}{unknown[0]}'")


def integer(
    obj: dict, name: str, lo: int, hi: int, default: int | None = None, prefix: str = ""
) -> int:
    """``obj[name]`` as an int in ``[lo, hi]`` (``default`` when absent, if given);
    ``prefix`` is the object's path in the file (``"cloud."``), for the messages."""
    value = obj.get(name, default)
    name = prefix + name
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecError(f"field {name!r}: expected an integer, got {value!r:.40}")
    if not lo <= value <= hi:
        raise SpecError(f"field {name!r}: {value} is outside [{lo}, {hi}]")
    return value


def number(
    obj: dict, name: str, lo: float, hi: float, default: float | None = None, prefix: str = ""
) -> float:
    """``obj[name]`` as a finite float in ``[lo, hi]``."""
    value = obj.get(name, default)
    name = prefix + name
    if not isinstance(value, int | float) or isinstance(value, bool) or not np.isfinite(value):
        raise SpecError(f"field {name!r}: expected a finite number, got {value!r:.40}")
    if not lo <= value <= hi:
        raise SpecError(f"field {name!r}: {value} is outside [{lo:g}, {hi:g}]")
    return float(value)


def choice(obj: dict, name: str, options, default: Any = None, prefix: str = "") -> Any:
    """``obj[name]``, one of ``options``."""
    value = obj.get(name, default)
    name = prefix + name
    if value not in options:
        raise SpecError(f"field {name!r}: {value!r:.40} is not one of {list(options)}")
    return value


def points(obj: dict, name: str, max_rows: int, prefix: str = "") -> np.ndarray:
    """``obj[name]`` as finite ``[N, 2]`` float64 with ``2 <= N <= max_rows``."""
    value, name = obj.get(name), prefix + name
    try:
        p = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise SpecError(f"field {name!r}: expected a list of [x, y] rows") from None
    if p.ndim != 2 or p.shape[1] != 2 or not 2 <= len(p) <= max_rows:
        raise SpecError(f"field {name!r}: expected 2 to {max_rows} rows of [x, y]")
    if not np.all(np.isfinite(p)):
        raise SpecError(f"field {name!r}: coordinates must be finite")
    return p


def matrix(value: Any, path: str, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    """``value`` as a finite array of ``shape`` (a -1: any length on that axis)."""
    try:
        arr = np.asarray(value, np.float64)
    except (ValueError, TypeError):
        raise SpecError(f"field '{path}': expected numbers of shape {shape}") from None
    fits = arr.ndim == len(shape)  # then zip pairs every axis
    fits = fits and all(n < 0 or n == a for n, a in zip(shape, arr.shape, strict=False))
    if not fits:
        raise SpecError(f"field '{path}': expected shape {shape}, got {arr.shape}")
    with np.errstate(over="ignore"):
        out = arr.astype(dtype)
    if not np.all(np.isfinite(out)):  # NaN, inf, or beyond the dtype's range
        raise SpecError(f"field '{path}': contains NaN, infinite or out-of-range values")
    return out


def mixture(
    value: Any, path: str, k: int | None = None, max_k: int = 1000, positive: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``{"weights" [K], "means" [K, 2], "covs" [K, 2, 2]}`` as float64 arrays: finite,
    weights > 0 (``positive``) or >= 0 and not all 0, covariances symmetric positive
    definite; ``K = k`` when given, else ``1 <= K <= max_k``."""
    if not isinstance(value, dict):
        raise SpecError(f"field '{path}': expected an object with weights, means and covs")
    known(value, {"weights", "means", "covs"}, f"{path}.")
    for name in ("weights", "means", "covs"):
        if name not in value:
            raise SpecError(f"missing field '{path}.{name}'")
    n = k if k is not None else np.shape(value["weights"])[0] if np.ndim(value["weights"]) else 0
    if k is None and not 1 <= n <= max_k:
        raise SpecError(f"field '{path}.weights': expected 1 to {max_k} weights")
    w = matrix(value["weights"], f"{path}.weights", (n,))
    m = matrix(value["means"], f"{path}.means", (n, 2))
    c = matrix(value["covs"], f"{path}.covs", (n, 2, 2))
    if np.any(w <= 0) if positive else (np.any(w < 0) or w.sum() <= 0):
        rule = "positive" if positive else ">= 0 and not all 0"
        raise SpecError(f"field '{path}.weights': weights must be {rule}")
    if not np.allclose(c, np.swapaxes(c, 1, 2)) or np.linalg.eigvalsh(c).min() <= 0:
        raise SpecError(f"field '{path}.covs': covariances must be symmetric positive definite")
    return w, m, c


class Fields:
    """Typed access to one JSON object, with field paths in the error messages."""

    def __init__(self, obj: Any, prefix: str = ""):
        if not isinstance(obj, dict):
            where = f"field '{prefix[:-1]}'" if prefix else "the document"
            raise SpecError(f"{where}: expected an object, got {type(obj).__name__}")
        self.obj, self.prefix = obj, prefix

    def expect(self, required: set[str], optional: set[str] = frozenset()) -> None:
        known(self.obj, set(required) | set(optional), self.prefix)
        missing = sorted(required - set(self.obj))
        if missing:
            raise SpecError(f"missing field '{self.prefix}{missing[0]}'")

    def sub(self, name: str) -> Fields:
        if name not in self.obj:
            raise SpecError(f"missing field '{self.prefix}{name}'")
        return Fields(self.obj[name], f"{self.prefix}{name}.")

    def get(self, name: str, kind: type, lo: float | None = None, hi: float | None = None):
        path = f"{self.prefix}{name}"
        if name not in self.obj:
            raise SpecError(f"missing field '{path}'")
        value = self.obj[name]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if ok and not math.isfinite(value):
                raise SpecError(f"field '{path}': expected a finite number, got {value}")
        if not ok:
            want = {int: "an integer", float: "a number", bool: "true or false"}.get(
                kind, f"a {kind.__name__}"
            )
            raise SpecError(f"field '{path}': expected {want}, got {value!r:.40}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise SpecError(f"field '{path}': {value} is outside [{lo}, {hi}]")
        return float(value) if kind is float else value

    def matrix(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The field as float32 of ``shape`` (coupled EM's parameter files are float32)."""
        return matrix(self.get(name, list), f"{self.prefix}{name}", shape, np.float32)
