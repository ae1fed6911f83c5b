"""A recorded Dirac descent: one serialisable spec gives the same numbers in the app or headless.

:class:`DescentRun` owns one run (a browser session holds one): the target, the Diracs and
the solver state. Each frame is one jitted :func:`~gmmot_core.descent.descend` call (its
steps and the cells of the last one) and one device-to-host copy. The run records the
frames as segments (``lr``, ``lloyd``); :meth:`DescentRun.spec` and
:meth:`DescentRun.from_spec` play them back in the same chunks, so the numbers are
identical on the same machine.
Semi-discrete OT runs in float64 (``jax.enable_x64`` around every core call): float32
cannot resolve the tutorial target's density, which falls to 1e-12 of its peak.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import param

from gmmot_core.buckets import bucket, image_grid, pad_diracs
from gmmot_core.semidiscrete.candidates import Grid
from gmmot_core.semidiscrete.cells import Cells
from gmmot_core.semidiscrete.density import cold_weights, image_density, pad_density
from gmmot_core.semidiscrete.descent import DescentState, descend
from gmmot_core.semidiscrete.sizes import Sizes, default_sizes
from gmmot_core.semidiscrete.status import EMPTY_CELL, NOT_CONVERGED, SIZE_BITS, STACKED, STOP_BITS
from gmmot_core.targets import gmm_image, tutorial_image
from gmmot_runs import spec
from gmmot_runs.figures import descent_figure
from gmmot_runs.knobs import Knobs, Settings, log_grid, number
from gmmot_runs.run import Run
from gmmot_runs.segments import Layout, Segment, boolean, knob, read_segments

__all__ = [
    "MAX_DIRACS",
    "TARGETS",
    "DescentKnobs",
    "DescentRun",
    "DescentSpec",
    "initial_positions",
    "target_extent",
    "target_values",
]

HISTORY = 500  # frames kept for looking back (positions and weights of each)
FRAME_STEPS = 10  # frames of up to this many steps share one compiled descent
MAX_INLINE_PIXELS = 512 * 512
MAX_ITERATIONS = 300  # Newton iterations per solve (a cold one runs through blurred stages)
MAX_DIRACS = 5000  # the screen's bound too (N is padded to a bucket: one solver per bucket)


class DescentKnobs(Knobs):
    """The descent's continuous knobs."""

    lr = number(
        100.0, (1e-3, 1e3), "learning rate",
        "Step size of the gradient step on the Diracs (unused by Lloyd).", log_grid(-3, 3),
    )  # fmt: skip
    lloyd = param.Boolean(
        True, label="Lloyd (move to centroids)",
        doc="Move each Dirac to its cell's barycentre instead of a gradient step.",
    )  # fmt: skip
    steps_per_frame = param.Integer(
        1, bounds=(1, FRAME_STEPS), label="steps per frame",
        doc="Descent steps between two frames (any value reuses one compiled descent).",
    )  # fmt: skip


# a recorded frame: its steps (a scripted run may play more than a slider's frame) and knobs
SEGMENTS = Layout((1, 1000), {"lr": knob(DescentKnobs, "lr"), "lloyd": boolean})


class DescentSettings(Settings):
    """The descent's settings (a change starts a new run)."""

    n = param.Integer(
        200, bounds=(2, MAX_DIRACS), label="Diracs N",
        doc="How many Diracs move (padded to a bucket: one compiled solver per bucket).",
    )  # fmt: skip
    init = param.Selector(
        objects=["random", "sample"], default="random", label="initialisation",
        doc="Diracs uniform on the box, or drawn from the target's density.",
    )  # fmt: skip
    seed = param.Integer(0, bounds=(0, 2**31 - 1), label="seed", doc="Seed of the Diracs.")


TARGETS = ("tutorial two peaks", "gaussian mixture", "uploaded image")


def target_values(target: dict) -> np.ndarray:
    """Pixel values ``[W, H]`` of a target description (the ``target`` field of a spec):
    ``{"preset": "tutorial two peaks", "res": 64}``, ``{"preset": "gaussian mixture",
    "res": 128, "means": ..., "covs": ..., "weights": ...}`` or ``{"values": [[...]]}``."""
    target = check_target(target)
    if "values" in target:
        return np.asarray(target["values"], np.float64)
    preset, res = target["preset"], int(target.get("res", 64))
    if preset == "tutorial two peaks":
        return tutorial_image(res)
    if preset == "gaussian mixture":
        values, _ = gmm_image(target["means"], target["covs"], target["weights"], (res, res))
        return values
    raise spec.SpecError(f"field 'target.preset': unknown target {preset!r}")


def target_extent(values: np.ndarray) -> np.ndarray:
    """Upper corner ``[sx, sy]`` of the target's rectangle ``[0, sx] x [0, sy]``: the
    picture's aspect with its longer side 1 (square targets: the unit square), so an
    uploaded picture keeps its shape (a circle stays a circle)."""
    w, h = np.shape(values)
    return np.array([1.0, h / w]) if w >= h else np.array([w / h, 1.0])


def run_density(values: np.ndarray):
    """The float64 density of ``values [W, H]`` a run solves against: on the picture's
    rectangle (:func:`target_extent`), padded to its bucketed grid (zero pixels beyond
    the box, which no cell reaches), so that every picture of a grid shares one program."""
    with jax.enable_x64(True):
        hi = tuple(float(x) for x in target_extent(values))
        exact = image_density(values, hi=hi, dtype=jnp.float64)
        return pad_density(exact, image_grid(np.shape(values)))


def initial_positions(values: np.ndarray, n: int, init: str, seed: int) -> np.ndarray:
    """``n`` starting Diracs ``[n, 2]`` float64 in the target's rectangle
    (:func:`target_extent`): uniform (``"random"``) or drawn from the target
    (``"sample"``: a pixel by its mass, then uniform in it)."""
    rng = np.random.default_rng(seed)
    if init == "random":
        return rng.random((n, 2)) * target_extent(values)
    if init == "sample":
        w, h = values.shape
        p = values.ravel() / values.sum()
        k = rng.choice(values.size, size=n, p=p)
        cell = np.stack([k // h, k % h], 1).astype(np.float64)
        return (cell + rng.random((n, 2))) / np.array([w, h]) * target_extent(values)
    raise ValueError(f"unknown initialisation {init!r} (expected 'random' or 'sample')")


def _messages(status: int) -> list[str]:
    out = []
    if status & STACKED:
        out.append("two Diracs share a position: their cells are not defined")
    if status & EMPTY_CELL:
        out.append("a cell lies where the target has no mass: move the Diracs or use 'sample'")
    if status & NOT_CONVERGED:
        out.append("the Newton solve for the weights did not converge")
    if status & SIZE_BITS:
        out.append("a static size ran out")
    return out


@dataclass
class DescentSpec:
    """Everything needed to replay a descent: target, Diracs, and the frames played."""

    target: dict
    n: int
    init: str = "random"
    seed: int = 0
    segments: list[Segment] = field(default_factory=list)

    def to_json(self) -> str:
        body = {f: getattr(self, f) for f in ("target", "n", "init", "seed")}
        return spec.write("descent", body | {"segments": [s.to_json() for s in self.segments]})

    @classmethod
    def from_dict(cls, obj: Any) -> DescentSpec:
        """Validate a parsed parameter file; :class:`SpecError` names the first bad field."""
        obj = spec.envelope(obj if isinstance(obj, dict) else {}, "descent")
        spec.known(obj, {"kind", "version", "gmmot", "target", "n", "init", "seed", "segments"})
        target = check_target(obj.get("target"))
        n = spec.integer(obj, "n", *DescentSettings.param.n.bounds)
        init = spec.choice(obj, "init", ("random", "sample"), default="random")
        seed = spec.integer(obj, "seed", 0, 2**31 - 1, default=0)
        return cls(target, n, init, seed, read_segments(obj, obj["version"], SEGMENTS))


def check_target(target: Any) -> dict:
    """A spec's ``target`` field, checked (see :func:`target_values` for the forms)."""
    if not isinstance(target, dict):
        raise spec.SpecError("field 'target': expected an object")
    if "values" in target:
        spec.known(target, {"values"}, "target.")
        v = spec.matrix(target["values"], "target.values", (-1, -1))
        if v.size > MAX_INLINE_PIXELS or min(v.shape) < 2 or np.any(v < 0) or v.sum() <= 0:
            raise spec.SpecError(
                "field 'target.values': expected a 2D array of at most 512 x 512 values >= 0, "
                "not all 0"
            )
        return target
    preset = spec.choice(target, "preset", TARGETS[:2], prefix="target.")
    spec.integer(target, "res", 4, 1024, default=64, prefix="target.")
    if preset == "tutorial two peaks":
        spec.known(target, {"preset", "res"}, "target.")
    else:
        spec.known(target, {"preset", "res", "means", "covs", "weights"}, "target.")
        parts = {k: target[k] for k in ("weights", "means", "covs") if k in target}
        spec.mixture(parts, "target", max_k=64)
    return target


class DescentRun(Run):
    """Dirac gradient descent / Lloyd towards a target image, frame by frame.

    The ``n`` Diracs are solved in a bucket of ``size >= n`` rows (:func:`bucket`): the
    rows past ``n`` are inert (mass 0), so any ``n`` in a bucket reuses one compiled
    solver and the results on the first ``n`` rows are those of an unpadded run
    (``tests/core/test_padding.py``). The view shows the first ``n`` rows only. The
    image is held in a :func:`image_grid` array (zero pixels beyond its box), one of five
    squares, so images of the same longer-side class share the solver too."""

    kind = "descent"
    Spec = DescentSpec
    counter = ("step", "descent steps")

    def __init__(
        self,
        target: dict,
        n: int = 200,
        init: str = "random",
        seed: int = 0,
        values: np.ndarray | None = None,
    ):
        self.target = target
        self.values = target_values(target) if values is None else np.asarray(values)
        self.n, self.init, self.seed = int(n), init, int(seed)
        self.density = run_density(self.values)
        self.positions0 = initial_positions(self.values, self.n, init, self.seed)
        self.size = bucket(self.n)
        self.knobs = DescentKnobs()
        self.reset()

    def reset(self) -> dict:
        """Back to the first Diracs (a cold Newton solve)."""
        with jax.enable_x64(True):
            y0, nu = pad_diracs(self.positions0, np.full(self.n, 1.0 / self.n), self.size)
            self.nu = jnp.asarray(nu, jnp.float64)
            self.sizes = run_sizes(self.size, self.density.rho.shape)
            # the cold solve is one step that does not move (lr 0) from Voronoi weights and
            # no hint: the frames' own program, not a second one
            start = cold_state(jnp.asarray(y0), self.density, self.sizes)
            state, _, self.sizes, cells = self._descend(start, 0.0, False, 1)
            self.state: DescentState = jax.device_get(state)
            self.cells = jax.device_get(cells)
        self.segments = []
        self.w2 = [float(self.state.w2)]
        self.error = [self._error(self.state)]
        self.history = [self._entry(self.state)]
        return self.view

    def _entry(self, state) -> tuple:
        """A history entry: step, positions and weights of the user's ``n`` Diracs."""
        n = self.n
        return state.step, np.asarray(state.positions)[:n], np.asarray(state.weights)[:n]

    def _error(self, state) -> float:
        masses = np.asarray(state.masses)[: self.n]
        return float(np.max(np.abs(masses - 1.0 / self.n)) * self.n)

    @property
    def stopped(self) -> bool:
        return bool(int(self.state.status) & STOP_BITS)

    @property
    def messages(self) -> list[str]:
        return _messages(int(self.state.status))

    def set(self, **knobs) -> None:
        """:class:`DescentKnobs`: the step size, Lloyd or not, the steps of a frame."""
        self.knobs.update(**knobs)

    def step(self) -> dict:
        """One frame: ``steps_per_frame`` steps with the current ``lr`` / ``lloyd``."""
        k = self.knobs
        self.play(k.steps_per_frame, lr=k.lr, lloyd=k.lloyd)
        return self.view

    def play(self, steps: int, lr: float, lloyd: bool) -> None:
        """One frame of ``steps`` steps (any up to :data:`FRAME_STEPS` share a program)."""
        if self.stopped:
            return
        with jax.enable_x64(True):
            state, trace, self.sizes, cells = self._descend(self.state, lr, lloyd, steps)
            state, trace, cells = jax.device_get((state, trace, cells))
        self.record(int(steps), {"lr": float(lr), "lloyd": bool(lloyd)})
        done = int(state.step) - int(self.state.step)
        self.w2.extend(float(x) for x in np.asarray(trace.w2)[:done])
        self.state, self.cells = state, cells
        self.error.extend(float(x) for x in np.asarray(trace.mass_error)[:done])
        if done:
            self.history.append(self._entry(state))
            del self.history[: max(0, len(self.history) - HISTORY)]

    def _descend(self, state: DescentState, lr: float, lloyd: bool, steps: int):
        """:func:`frames` of this run (the cold start and the history's cells use it too)."""
        return frames(state, self.density, self.nu, self.sizes, lr, lloyd, steps)

    def cells_at(self, index: int):
        """Step, positions and cells of history entry ``index`` (for looking back)."""
        step, y, w = self.history[index]
        yp, wp = pad_diracs(y, w, self.size)
        no_hint = np.full_like(np.asarray(self.state.labels), -1)
        st = self.state._replace(
            positions=yp,
            weights=wp,
            labels=no_hint,
            grad=np.zeros_like(yp),
            status=np.zeros_like(np.asarray(self.state.status)),
        )
        with jax.enable_x64(True):
            st = jax.device_put(st)
            # one step that does not move (lr 0) from the entry's solved weights: the solve
            # stops at its first diagram, whose labels give the cells, all in the frames'
            # program (zero steps drew from labels it did not have, and the fallback was a
            # program of its own: the first look-back compiled it, 60 s at N = 2000)
            cells = jax.device_get(self._descend(st, 0.0, False, 1)[3])
        return int(step), y, _rows(cells, self.n)

    @property
    def view(self) -> dict:
        s, n = self.state, self.n
        return {
            "step": int(s.step),
            "positions": np.asarray(s.positions)[:n],
            "barycenters": np.asarray(s.barycenters)[:n],
            "masses": np.asarray(s.masses)[:n],
            "weights": np.asarray(s.weights)[:n],
            "cells": _rows(self.cells, n),
            "w2": np.asarray(self.w2),
            "error": np.asarray(self.error),
            "status": int(s.status),
            "messages": _messages(int(s.status)),
        }

    def spec(self) -> DescentSpec:
        target = self.target if "preset" in self.target else {"values": self.values.tolist()}
        return DescentSpec(target, self.n, self.init, self.seed, copy.deepcopy(self.segments))

    @classmethod
    def start(cls, spec: DescentSpec) -> DescentRun:
        return cls(spec.target, spec.n, spec.init, spec.seed)

    def results(self) -> dict:
        """The latest positions, weights and masses, and the W2^2 trace."""
        v = self.view
        return {
            "kind": "descent",
            "step": v["step"],
            "positions": v["positions"].tolist(),
            "weights": v["weights"].tolist(),
            "masses": v["masses"].tolist(),
            "w2": v["w2"].tolist(),
            "status": v["messages"],
        }

    def figure(self, fmt: str, view: dict | None = None) -> bytes:
        return descent_figure(self.values, self.view if view is None else view, fmt)


def run_sizes(size: int, shape: tuple[int, int]) -> Sizes:
    """The static sizes a run of ``size`` Diracs starts with: the defaults with 4x the bin
    capacity and the rescued cells, which Diracs that gather on a peaked target need
    (measured on the tutorial target: the first Lloyd steps at N = 1000 grew both twice,
    each a recompile of the frame), so that one bucket is one program."""
    sizes = default_sizes(size, shape)
    g = sizes.grid
    if not g.bins:
        return sizes
    return sizes._replace(grid=Grid(g.bins, 4 * g.cap, g.radius, min(4 * g.rescue, size // 2)))


def frames(state: DescentState, density, nu, sizes: Sizes, lr, lloyd, steps: int, tol=None):
    """``steps`` steps from ``state`` by the one program a run of this bucket and grid
    compiles (``lr``, ``lloyd``, ``tol`` and ``steps <= FRAME_STEPS`` traced, the cells of
    the last state drawn in the same call); returns ``(state, trace, sizes, cells)`` of
    :func:`descend` (call under x64)."""
    return descend(
        state, density, nu, lr, lloyd, steps, sizes, tol=tol, with_cells=True,
        length=max(steps, FRAME_STEPS), max_iterations=MAX_ITERATIONS,
    )  # fmt: skip


def cold_state(y, density, sizes: Sizes) -> DescentState:
    """A state at ``y [N, 2]`` with Voronoi weights that no solve has seen: one frame of
    one ``lr = 0`` step from it is the cold solve, in the frames' own program (no hint:
    labels all -1)."""
    n, dt = y.shape[0], y.dtype
    zero = jnp.zeros((n,), dt)
    return DescentState(
        y,
        cold_weights(y, density).astype(dt),
        zero,
        y,
        jnp.asarray(0.0, dt),
        jnp.zeros_like(y),
        jnp.asarray(0, jnp.int32),
        np.asarray(-1),  # a strong dtype, as in a state from the host: the same program
        jnp.full((n, sizes.max_vertices), -1, jnp.int32),
    )


def _rows(cells: Cells, n: int) -> Cells:
    """The first ``n`` cells (the padding's are empty; labels never point at them)."""
    return cells._replace(
        vertices=cells.vertices[:n], labels=cells.labels[:n], count=cells.count[:n]
    )
