"""One segment record for every run kind: ``frames`` consecutive frames of ``steps`` steps
each (descent steps, Adam steps, barycenter or EM iterations) played with the same
``values``, the knob values those frames ran with, under the names of the kind's model.

In a parameter file (version 2 of every kind) a segment reads
``{"frames": 2, "steps": 10, "values": {"lr": 100.0, "lloyd": true}}``. Version 1 files
wrote a row per frame (``[steps, lr, lloyd]``) or, for coupled EM, an object
``{"frames", "em_per_frame", "m_steps", ...}``: :func:`read_segments` takes both, here only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gmmot_runs import spec
from gmmot_runs.knobs import Knobs

__all__ = ["Layout", "Segment", "boolean", "bounded", "knob", "read_segments", "record"]

Check = Callable[[Any, str], Any]  # (value, field path) -> the value, or SpecError


@dataclass
class Segment:
    """``frames`` frames of ``steps`` steps each with the same ``values``."""

    frames: int
    steps: int
    values: dict

    def to_json(self) -> dict:
        return {"frames": self.frames, "steps": self.steps, "values": dict(self.values)}


@dataclass(frozen=True)
class Layout:
    """What a kind's segments hold: the bounds of ``steps`` and one check per value, in
    the order of a version-1 row (``[steps, *values]``). ``v1_steps`` names the
    version-1 object field that held ``steps`` (coupled EM's ``em_per_frame``); such
    objects also carried ``frames``."""

    steps: tuple[int, int]
    checks: dict[str, Check]
    v1_steps: str | None = None


def knob(model: type[Knobs], name: str) -> Check:
    """The check of knob ``name`` of ``model``: its type and bounds."""
    return lambda value, where: model.check(name, value, f"field '{where}'")


def bounded(lo: float, hi: float) -> Check:
    """The check of a recorded number in ``[lo, hi]`` that no knob model holds."""
    return lambda value, where: spec.number({where: value}, where, lo, hi)


def boolean(value, where: str) -> bool:
    """A recorded flag (``restart``, ``lloyd``): true or false."""
    if not isinstance(value, bool):
        raise spec.SpecError(f"field '{where}': expected true or false, got {value!r:.40}")
    return value


def record(segments: list[Segment], steps: int, values: dict) -> None:
    """Append one frame to ``segments``: the last segment grows when it ran the same way."""
    last = segments[-1] if segments else None
    if last is not None and last.steps == steps and last.values == values:
        last.frames += 1
    else:
        segments.append(Segment(1, int(steps), dict(values)))


def read_segments(obj: dict, version: int, layout: Layout) -> list[Segment]:
    """The checked ``segments`` field of a parameter file at ``version`` (default ``[]``);
    :class:`~gmmot_runs.spec.SpecError` names the bad field."""
    rows = obj.get("segments", [])
    if not isinstance(rows, list):
        raise spec.SpecError("field 'segments': expected a list")
    read_row = _v1 if version == 1 else _v2
    return [read_row(row, f"segments[{i}]", layout) for i, row in enumerate(rows)]


def _v2(row, where: str, layout: Layout) -> Segment:
    f = spec.Fields(row, f"{where}.")
    f.expect({"frames", "steps", "values"})
    frames = f.get("frames", int, 1, 10**7)
    steps = f.get("steps", int, *layout.steps)
    v = f.sub("values")
    v.expect(set(layout.checks))
    return Segment(frames, steps, _checked(v.obj, f"{where}.values", layout))


def _v1(row, where: str, layout: Layout) -> Segment:
    names = list(layout.checks)
    if layout.v1_steps is None:  # [steps, *values], one row per frame
        if not isinstance(row, list) or len(row) != 1 + len(names):
            raise spec.SpecError(f"field '{where}': expected [steps, {', '.join(names)}]")
        steps = spec.Fields({"steps": row[0]}, f"{where}.").get("steps", int, *layout.steps)
        return Segment(1, steps, _checked(dict(zip(names, row[1:], strict=True)), where, layout))
    f = spec.Fields(row, f"{where}.")
    f.expect({"frames", layout.v1_steps, *names})
    frames = f.get("frames", int, 0, 10**7)
    steps = f.get(layout.v1_steps, int, *layout.steps)
    return Segment(frames, steps, _checked(row, where, layout))


def _checked(values: dict, where: str, layout: Layout) -> dict:
    return {n: check(values[n], f"{where}.{n}") for n, check in layout.checks.items()}
