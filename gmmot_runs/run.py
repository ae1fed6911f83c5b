"""One protocol for every run kind: a :class:`Run` advances frame by frame, records what
it played (:class:`~gmmot_runs.segments.Segment` s), and writes its parameter file, its
results and its figure; :func:`replay` rebuilds a run of any kind from its parameter file.

A kind is a :class:`Run` subclass named in :data:`RUNS` (imported on use: a replay loads
only its own kind's solvers) with a ``Spec``: the parameter file, read by
``Spec.from_dict`` (a :class:`~gmmot_runs.spec.SpecError` names the bad field) and
written by ``Spec.to_json``; a spec's ``segments`` are the frames it plays again.
"""

from __future__ import annotations

import abc
import importlib
from typing import ClassVar

from gmmot_runs.segments import Segment, record
from gmmot_runs.spec import SpecError, decode, kind_of

__all__ = ["RUNS", "Run", "read_spec", "replay", "run_class"]

# kind -> "module:class", the kinds a parameter file may name
RUNS = {
    "coupled_em": "gmmot_runs.coupled_em:CoupledEMRun",
    "descent": "gmmot_runs.descent:DescentRun",
    "barycenter": "gmmot_runs.barycenter:BarycenterRun",
    "w2_fit": "gmmot_runs.w2_fit:W2FitRun",
}


class Run(abc.ABC):
    """A run of one kind. ``step`` plays one frame with the current knobs (``set``) and
    records it; ``spec`` is everything :meth:`from_spec` needs to play the same frames
    again, bit for bit."""

    kind: ClassVar[str]
    Spec: ClassVar[type]
    # the results field that counts the frames' work, and its words ("EM iterations")
    counter: ClassVar[tuple[str, str]]
    segments: list[Segment]  # the frames played since the start (reset empties it)

    @classmethod
    @abc.abstractmethod
    def start(cls, spec) -> Run:
        """The run of ``spec`` (a ``cls.Spec``) at its start, no frame played."""

    @classmethod
    def from_spec(cls, spec) -> Run:
        """The run of ``spec``, its recorded frames played again one by one."""
        run = cls.start(spec)
        for seg in spec.segments:
            for _ in range(seg.frames):
                run.play(seg.steps, **seg.values)
        return run

    @abc.abstractmethod
    def play(self, steps: int, **values) -> None:
        """One frame of ``steps`` steps with the knob ``values`` a segment records (what
        :meth:`step` calls with the current knobs, and a replay with the recorded ones);
        recorded by :meth:`record` once it ran."""

    def record(self, steps: int, values: dict) -> None:
        """Add a played frame to :attr:`segments`."""
        record(self.segments, steps, values)

    @abc.abstractmethod
    def set(self, **knobs) -> None:
        """Continuous knobs, from the next frame on (no recompile); ``ValueError`` on a
        value outside its bounds, and nothing changes."""

    @abc.abstractmethod
    def step(self) -> dict:
        """One frame with the current knobs, recorded; returns :attr:`view`."""

    @abc.abstractmethod
    def reset(self) -> dict:
        """Back to the start (the record emptied); returns :attr:`view`."""

    @property
    @abc.abstractmethod
    def view(self) -> dict:
        """What a screen draws (host arrays)."""

    @property
    @abc.abstractmethod
    def stopped(self) -> bool:
        """Whether a further frame would change nothing (halted, rolled back or done)."""

    @property
    @abc.abstractmethod
    def messages(self) -> list[str]:
        """What the status says, one sentence per flag ([] when all is well)."""

    @abc.abstractmethod
    def spec(self):
        """The parameter file of this run so far (a ``Spec``)."""

    @abc.abstractmethod
    def results(self) -> dict:
        """The results file: plain JSON types, with ``kind`` and ``status`` (messages)."""

    @abc.abstractmethod
    def figure(self, fmt: str, view: dict | None = None) -> bytes:
        """The figure of ``view`` (default :attr:`view`; a screen passes the view it
        shows), ``fmt`` "png" or "svg"."""

    def summary(self, results: dict) -> str:
        """One line for the command line: ``"12 EM iterations"``."""
        field, words = self.counter
        return f"{results[field]} {words}"


def run_class(kind: str | None) -> type[Run]:
    """The :class:`Run` subclass of ``kind``; :class:`SpecError` for an unknown kind."""
    if kind not in RUNS:
        raise SpecError(f"field 'kind': {kind!r} is not one of {sorted(RUNS)}")
    module, name = RUNS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def read_spec(raw: bytes | str | dict) -> tuple[type[Run], object]:
    """The run class and the validated ``Spec`` of a parameter file (JSON text or its
    decoded object)."""
    obj = raw if isinstance(raw, dict) else decode(raw)
    cls = run_class(kind_of(obj))
    return cls, cls.Spec.from_dict(obj)


def replay(raw: bytes | str | dict) -> Run:
    """The run of a parameter file: the same frames with the same settings."""
    cls, spec = read_spec(raw)
    return cls.from_spec(spec)
