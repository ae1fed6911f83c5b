"""Parsing user files into point clouds, safely (in memory, capped, never unpickled).

``parse_points(data, filename)`` accepts CSV / TSV / whitespace text with two numeric
columns (x, y) and an optional third (weight), an optional header line, or a ``.npy``
array ``[N, 2]`` / ``[N, 3]`` (``allow_pickle=False``). Every problem raises
``ValueError`` with a message meant for the user. ``check_cloud(points, k)`` refuses a
cloud a K-component 2D mixture cannot be fitted to (all points equal, collinear, fewer
distinct points than K).
"""

from __future__ import annotations

import io

import numpy as np

__all__ = [
    "MAX_BYTES",
    "MAX_COUPLED_COORD",
    "MAX_ROWS",
    "MIN_POINTS",
    "WEBSOCKET_MAX_BYTES",
    "check_cloud",
    "parse_points",
    "points_from_arrays",
]

MAX_BYTES = 50 * 2**20  # 50 MiB per uploaded file
# the server's websocket message cap: uploads arrive in 4 MB chunks (app/upload.py), so
# no message comes near it (Panel's default is 20 MB)
WEBSOCKET_MAX_BYTES = 16 * 2**20
MAX_ROWS = 2_000_000
MIN_POINTS = 2
FLAT = 1e-6  # a cloud whose second principal spread is below this share of the first is flat
# coupled EM runs on the raw coordinates in float32: beyond this magnitude its entropic
# transport cannot resolve the Bures costs (at 4e5 MW2 came out 0, at 1e12 the fit was NaN)
MAX_COUPLED_COORD = 1e4


def _from_npy(data: bytes) -> np.ndarray:
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"not a plain numeric .npy array ({exc})") from None
    except Exception as exc:
        raise ValueError(f"cannot read the .npy file: {exc}") from None
    if arr.dtype.kind not in "biuf":  # complex, text, dates, records: not coordinates
        raise ValueError(f".npy array has dtype {arr.dtype}; real numbers are needed")
    return arr


def _from_text(data: bytes) -> np.ndarray:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text (binary data?)") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise ValueError("the file is empty")
    if len(lines) > MAX_ROWS + 1:
        raise ValueError(f"too many rows: {len(lines)} > {MAX_ROWS}")
    delim = (
        "\t"
        if "\t" in lines[0]
        else ("," if "," in lines[0] else (";" if ";" in lines[0] else None))
    )

    def split(line: str) -> list[str]:
        return [c.strip() for c in (line.split(delim) if delim else line.split())]

    first = split(lines[0])
    try:
        [float(c) for c in first]
        body = lines
    except ValueError:
        body = lines[1:]  # a header line
    rows = [split(ln) for ln in body]
    if not rows:
        raise ValueError("the file has a header but no data rows")
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ValueError(
                f"row {i + 1 + (len(lines) - len(body))} has {len(r)} columns, expected {width}"
            )
    try:
        return np.array([[float(c) for c in r] for r in rows], dtype=np.float64)
    except ValueError as exc:
        bad = str(exc).split(":")[-1].strip()
        raise ValueError(f"non-numeric value {bad} in the data") from None


def parse_points(data: bytes, filename: str = "") -> tuple[np.ndarray, np.ndarray | None, str]:
    """Bytes of an uploaded file -> ``(points [N, 2] float32, weights [N] | None, note)``.

    Rows with NaN/inf are dropped (the note says how many); negative weights, fewer than
    ``MIN_POINTS`` usable rows, more than ``MAX_ROWS`` rows or ``MAX_BYTES`` bytes, and
    any other column count than 2 or 3 are errors.
    """
    if len(data) == 0:
        raise ValueError("the file is empty")
    if len(data) > MAX_BYTES:
        raise ValueError(f"file too large: {len(data) / 2**20:.1f} MiB > {MAX_BYTES // 2**20} MiB")
    arr = _from_npy(data) if filename.lower().endswith(".npy") else _from_text(data)
    if arr.ndim != 2 or arr.shape[1] not in (2, 3):
        raise ValueError(f"expected 2 columns (x, y) or 3 (x, y, weight), got shape {arr.shape}")
    return _checked_rows(arr, np.float32)


def points_from_arrays(points, weights=None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """A cloud given as arrays (a notebook's): ``points [N, 2]`` and ``weights [N]`` (or
    None), checked as :func:`parse_points` checks an uploaded file's, kept in float64."""
    try:
        p = np.asarray(points, np.float64)
        w = None if weights is None else np.asarray(weights, np.float64)
    except (TypeError, ValueError):
        raise ValueError("expected numbers: points [N, 2] and weights [N]") from None
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"expected points of shape [N, 2], got {p.shape}")
    if w is not None and w.shape != (len(p),):
        raise ValueError(f"expected {len(p)} weights, one per point, got shape {w.shape}")
    return _checked_rows(p if w is None else np.column_stack([p, w]), np.float64)


def _checked_rows(arr: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Rows ``[x, y(, weight)]`` checked (see :func:`parse_points`), as ``dtype``."""
    if arr.shape[0] > MAX_ROWS:
        raise ValueError(f"too many rows: {arr.shape[0]} > {MAX_ROWS}")
    arr = arr.astype(np.float64)
    ok = np.all(np.isfinite(arr), axis=1)
    if np.any(np.abs(arr[ok, :2]) > 1e15):
        raise ValueError("coordinates above 1e15 in magnitude; rescale the data")
    arr = arr[ok]
    dropped = int((~ok).sum())
    if arr.shape[0] < MIN_POINTS:
        raise ValueError(f"only {arr.shape[0]} usable rows; at least {MIN_POINTS} are needed")
    weights = None
    if arr.shape[1] == 3:
        weights = arr[:, 2]
        if np.any(weights < 0):
            raise ValueError("negative weights in column 3")
        if weights.sum() <= 0:
            raise ValueError("all weights are 0")
        weights = weights.astype(dtype)
    note = f"{arr.shape[0]} points"
    note += ", weights from column 3" if weights is not None else ""
    note += f", {dropped} rows with NaN/inf dropped" if dropped else ""
    return arr[:, :2].astype(dtype), weights, note


def check_cloud(points, k: int, name: str = "the cloud", weights=None) -> None:
    """Raise ValueError (naming ``name``) when ``points [N, 2]`` (those of positive
    ``weights``) are all equal, lie on one line (second singular value of the centred
    cloud below ``FLAT`` x the first), have fewer distinct points than ``k``, or reach
    beyond ``MAX_COUPLED_COORD`` in magnitude (coupled EM's float32 range)."""
    p = np.asarray(points, np.float64)
    if weights is not None:
        p = p[np.asarray(weights) > 0]
    big = float(np.max(np.abs(p))) if p.size else 0.0
    if big > MAX_COUPLED_COORD:
        raise ValueError(
            f"{name}: coordinates reach {big:.3g}; coupled EM runs in float32 on the raw "
            f"coordinates and cannot resolve transport costs beyond |x| = "
            f"{MAX_COUPLED_COORD:g}: rescale the data (e.g. to unit spread) and upload again"
        )
    centred = p - p.mean(0)
    sv = np.linalg.svd(centred, compute_uv=False) if len(p) > 1 else np.zeros(2)
    if sv[0] == 0:
        raise ValueError(f"{name}: all {len(p)} points are equal; a mixture needs a spread")
    if sv[1] <= FLAT * sv[0]:
        raise ValueError(
            f"{name}: the points lie on one line; a 2D mixture needs a spread in both directions"
        )
    distinct = len(np.unique(p, axis=0))
    if distinct < k:
        raise ValueError(f"{name} has {distinct} distinct points, fewer than K = {k} components")
