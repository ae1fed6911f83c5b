"""A recorded GMM-barycenter run: one serialisable spec gives the same numbers in the app
or headless.

:class:`BarycenterRun` owns one run (a browser session holds one): the input mixtures, the
support and the solver state. A frame is one jitted :func:`~gmmot_core.barycenter.run`
call (up to ``steps_per_frame`` iterations, fewer once converged) and one device-to-host
copy. Moving the barycentric weights or epsilon restarts the iterations from the current
support and potentials (:func:`~gmmot_core.barycenter.restart`: no recompile). The run
records its frames as segments (``lambdas``, ``epsilon``, ``restart``);
:meth:`BarycenterRun.from_spec` plays them back in the same chunks.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import param

from gmmot_core import barycenter as bc
from gmmot_core.mixture import GMM
from gmmot_core.synthetic import random_mixtures
from gmmot_runs import spec
from gmmot_runs.figures import barycenter_figure
from gmmot_runs.knobs import Knobs, Settings, log_grid, number
from gmmot_runs.run import Run
from gmmot_runs.segments import Layout, Segment, boolean, knob, read_segments

__all__ = [
    "MAX_BAR_SIZE",
    "MAX_COMPONENTS",
    "MAX_INPUTS",
    "BarycenterKnobs",
    "BarycenterRun",
    "BarycenterSpec",
    "barycenter_grid",
    "density_grids",
    "generator_inputs",
    "input_grids",
    "notebook_levels",
]

CONFIG = bc.BarycenterConfig()
RIDGE = 40.0  # distance of the generator's mixtures from the origin
MAX_INPUTS, MAX_COMPONENTS, MAX_BAR_SIZE = 8, 10, 64  # the screen's bounds too


@jax.jit
def _frame(state: bc.BarycenterState, inputs: bc.Inputs, k) -> bc.BarycenterState:
    return bc.run(state, inputs, CONFIG, k)  # k traced: any iterations per frame, one compile


_restart = jax.jit(bc.restart)


def generator_inputs(
    n_inputs: int, n_components: int, alpha: float, seed: int
) -> tuple[list[GMM], np.ndarray]:
    """The notebook's recipe (:func:`~gmmot_core.synthetic.random_mixtures`) on a circle:
    ``n_inputs`` mixtures of ``n_components`` Gaussians around ridge offsets on a circle of
    radius ``RIDGE``, mean spread ``0.1 RIDGE`` (the notebook's ``0.1 mean(c)`` would
    vanish where a centre's coordinates cancel), Dirichlet(alpha) barycentric weights."""
    angles = np.linspace(0.0, 2.0 * np.pi, n_inputs, endpoint=False) + np.pi / 6
    centers = tuple((RIDGE * np.cos(t), RIDGE * np.sin(t)) for t in angles)
    scales = tuple(3.0 + (i % 3) for i in range(n_inputs))
    spreads = (0.1 * RIDGE,) * n_inputs
    return random_mixtures(seed, (n_components,) * n_inputs, centers, scales, alpha, spreads)


def _check_mixtures(value: Any) -> list | None:
    """``None`` or 2..MAX_INPUTS mixtures ``{weights [K], means [K, 2], covs [K, 2, 2]}``
    with finite values, weights >= 0 (sum > 0) and symmetric positive definite covs."""
    if value is None:
        return None
    if not isinstance(value, list) or not 2 <= len(value) <= MAX_INPUTS:
        raise spec.SpecError(f"field 'mixtures': expected a list of 2 to {MAX_INPUTS} mixtures")
    out = []
    for i, g in enumerate(value):
        w, mu, cov = spec.mixture(g, f"mixtures[{i}]", max_k=MAX_COMPONENTS, positive=False)
        out.append({"weights": w.tolist(), "means": mu.tolist(), "covs": cov.tolist()})
    return out


class BarycenterSettings(Settings):
    """The barycenter's settings: the generator's mixtures and the support (a change
    starts a new run)."""

    inputs = param.Integer(3, bounds=(2, MAX_INPUTS), label="mixtures", doc="Input mixtures.")
    components = param.Integer(
        3, bounds=(1, MAX_COMPONENTS), label="components each", doc="Gaussians per input."
    )
    alpha = param.Number(
        50.0, bounds=(1e-3, 1e6), label="Dirichlet alpha (0.001-1e6; large = equal weights)",
        doc="Concentration of the inputs' component weights.",
    )  # fmt: skip
    seed = param.Integer(0, bounds=(0, 2**31 - 1), label="seed", doc="Seed of the generator.")
    bar_size = param.Integer(
        6, bounds=(1, MAX_BAR_SIZE), label="bar_size", doc="Gaussians of the barycenter's support."
    )


class BarycenterKnobs(Knobs):
    """The barycenter's continuous knobs (the barycentric weights, one per input, are
    the run's ``lambdas``)."""

    epsilon = number(
        0.1, (1e-2, 1e2), "epsilon",
        "Entropic regularisation of each input's transport to the support.", log_grid(-2, 2),
    )  # fmt: skip
    steps_per_frame = param.Integer(
        1, bounds=(1, 10), label="iterations per frame", doc="Iterations between two frames."
    )


@dataclass
class BarycenterSpec:
    """Everything needed to replay a barycenter run: the inputs (the generator's settings),
    the support's size and initialisation, and the frames played."""

    n_inputs: int = BarycenterSettings.param.inputs.default
    n_components: int = BarycenterSettings.param.components.default
    alpha: float = BarycenterSettings.param.alpha.default
    seed: int = BarycenterSettings.param.seed.default
    bar_size: int = BarycenterSettings.param.bar_size.default
    init: str = "random"  # or "input 0", "input 1", ...
    segments: list[Segment] = field(default_factory=list)
    mixtures: list | None = None  # given inputs ({weights, means, covs}) instead of the generator

    def to_json(self) -> str:
        body = self.__dict__ | {"segments": [s.to_json() for s in self.segments]}
        return spec.write("barycenter", body)

    @classmethod
    def from_dict(cls, obj: Any) -> BarycenterSpec:
        """Validate a parsed parameter file; :class:`SpecError` names the first bad field."""
        obj = spec.envelope(obj if isinstance(obj, dict) else {}, "barycenter")
        spec.known(obj, {"kind", "version", "gmmot", "segments"} | set(cls.__dataclass_fields__))
        mixtures = _check_mixtures(obj.get("mixtures"))
        m = spec.integer(obj, "n_inputs", 2, MAX_INPUTS)
        if mixtures is not None and len(mixtures) != m:
            raise spec.SpecError(f"field 'n_inputs': {m} but 'mixtures' holds {len(mixtures)}")
        k = spec.integer(obj, "n_components", 1, MAX_COMPONENTS)
        alpha = spec.number(obj, "alpha", 1e-3, 1e6)
        seed = spec.integer(obj, "seed", 0, 2**31 - 1)
        b = spec.integer(obj, "bar_size", 1, MAX_BAR_SIZE)
        init = spec.choice(obj, "init", ["random", *(f"input {i}" for i in range(m))], "random")

        def lambdas(value, where: str) -> list[float]:
            ok = isinstance(value, list) and len(value) == m
            ok = ok and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
            if not (ok and all(0 <= x < math.inf for x in value) and sum(value) > 0):
                raise spec.SpecError(f"field '{where}': expected {m} weights >= 0, not all 0")
            return [float(x) for x in value]

        layout = Layout(
            (1, 1000),
            {"lambdas": lambdas, "epsilon": knob(BarycenterKnobs, "epsilon"), "restart": boolean},
        )
        segs = read_segments(obj, obj["version"], layout)
        return cls(m, k, alpha, seed, b, init, segs, mixtures)


class BarycenterRun(Run):
    """A free-support GMM barycenter, iterated frame by frame (float32, as OTT)."""

    kind = "barycenter"
    Spec = BarycenterSpec
    counter = ("iteration", "barycenter iterations")

    def __init__(self, spec: BarycenterSpec | None = None):
        self.config = spec if spec is not None else BarycenterSpec()
        c = self.config
        if c.mixtures is None:
            self.mixtures, lam = generator_inputs(c.n_inputs, c.n_components, c.alpha, c.seed)
        else:
            self.mixtures = [
                GMM(*(jnp.asarray(g[k], jnp.float32) for k in ("weights", "means", "covs")))
                for g in c.mixtures
            ]
            self.mixtures = [g._replace(weights=g.weights / g.weights.sum()) for g in self.mixtures]
            lam = np.full(len(self.mixtures), 1.0 / len(self.mixtures))
        self.lambdas0 = np.asarray(lam, np.float64)
        self.inputs = bc.pad_inputs(self.mixtures)
        self.lambdas, self.knobs = self.lambdas0.copy(), BarycenterKnobs()
        self.reset()

    def _support(self) -> GMM:
        key = jax.random.key(self.config.seed)
        if self.config.init == "random":
            # the notebook's x_init: small random Gaussians at the origin
            return bc.random_support(key, self.config.bar_size)
        m = int(self.config.init.split()[1])
        return bc.support_from_input(self.inputs, m, self.config.bar_size, key)

    def reset(self) -> dict:
        """Back to the initial support (the next step solves cold)."""
        lam = jnp.asarray(self.lambdas, jnp.float32)
        self.state = jax.device_get(
            bc.init(self._support(), self.inputs, lam, self.epsilon, config=CONFIG)
        )
        self.segments = []
        self.costs: list[float] = []
        self.iterations = 0
        self._pending_restart = False
        return self.view

    @property
    def epsilon(self) -> float:
        return self.knobs.epsilon

    def set(self, lambdas=None, **knobs) -> None:
        """New barycentric weights (kept normalised to sum 1: what the solver uses, and
        what the view, the files and the figure show) or :class:`BarycenterKnobs`: new
        weights or epsilon are applied (a restart) on the next frame."""
        lam = np.asarray(self.lambdas if lambdas is None else lambdas, np.float64)
        if lam.shape != (len(self.mixtures),) or not np.all(np.isfinite(lam)) or lam.min() < 0:
            raise ValueError(f"expected {len(self.mixtures)} non-negative weights")
        if lam.sum() <= 0:
            raise ValueError("the weights must not all be 0")
        lam = lam / lam.sum()
        epsilon = self.knobs.epsilon
        self.knobs.update(**knobs)
        if not (np.allclose(lam, self.lambdas) and self.knobs.epsilon == epsilon):
            self.lambdas = lam
            self._pending_restart = self.iterations > 0

    @property
    def stopped(self) -> bool:
        """Converged or out of iterations, with no new knob to apply."""
        return bool(self.state.done) and not self._pending_restart

    @property
    def messages(self) -> list[str]:
        return ["stopped without converging"] if self.stopped and not self.state.converged else []

    def step(self) -> dict:
        """One frame: up to ``steps_per_frame`` iterations with the current knobs."""
        self.play(
            self.knobs.steps_per_frame,
            lambdas=[float(x) for x in self.lambdas],
            epsilon=self.epsilon,
            restart=self._pending_restart,
        )
        return self.view

    def play(self, steps: int, lambdas: list, epsilon: float, restart: bool) -> None:
        """One frame of up to ``steps`` iterations at ``lambdas`` (summing to 1) and
        ``epsilon``, from a restart if ``restart``."""
        self.lambdas, self.knobs.epsilon = np.asarray(lambdas, np.float64), float(epsilon)
        lam = jnp.asarray(lambdas, jnp.float32)
        eps = jnp.asarray(epsilon, jnp.float32)
        state = self.state
        if restart:
            state = _restart(state, lam, eps)
        else:
            state = state._replace(lambdas=lam, epsilon=eps)
        before = 0 if restart else int(self.state.iteration)
        if not restart and bool(self.state.done):
            return
        state = jax.device_get(_frame(state, self.inputs, jnp.int32(steps)))
        values = {"lambdas": [float(x) for x in lambdas], "epsilon": float(epsilon)}
        self.record(int(steps), values | {"restart": restart})
        new = np.asarray(state.costs)[before : int(state.iteration)]
        self.costs.extend(float(x) for x in new)
        self.iterations += len(new)
        self.state, self._pending_restart = state, False

    @property
    def view(self) -> dict:
        s = self.state
        return {
            "iteration": self.iterations,
            "means": np.asarray(s.means),
            "covs": np.asarray(s.covs),
            "coupling": np.asarray(s.coupling),
            "costs": np.asarray(self.costs),
            "converged": bool(s.converged),
            "done": self.stopped,
            "lambdas": np.asarray(self.lambdas),
            "epsilon": self.epsilon,
            "inputs": [GMM(*(np.asarray(x) for x in g)) for g in self.mixtures],
        }

    def spec(self) -> BarycenterSpec:
        c = self.config
        return BarycenterSpec(
            c.n_inputs, c.n_components, c.alpha, c.seed, c.bar_size, c.init,
            copy.deepcopy(self.segments), c.mixtures,
        )  # fmt: skip

    @classmethod
    def start(cls, spec: BarycenterSpec) -> BarycenterRun:
        return cls(dataclasses.replace(spec, segments=[]))

    def results(self) -> dict:
        """The barycenter mixture, the transport matrices and the cost trace."""
        return _results(self.view, self.messages)

    def figure(self, fmt: str, view: dict | None = None) -> bytes:
        return barycenter_figure(self.view if view is None else view, fmt)


def _results(v: dict, messages: list[str]) -> dict:
    b = len(v["means"])
    return {
        "kind": "barycenter",
        "iteration": v["iteration"],
        "converged": v["converged"],
        "weights": [1.0 / b] * b,
        "means": v["means"].tolist(),
        "covs": v["covs"].tolist(),
        "transport": v["coupling"].tolist(),
        "costs": v["costs"].tolist(),
        "lambdas": v["lambdas"].tolist(),
        "epsilon": v["epsilon"],
        "status": messages,
    }


def density_grids(view: dict, n: int = 120) -> tuple[np.ndarray, np.ndarray, list, np.ndarray]:
    """``-log p`` of every input and of the barycenter on the inputs' grid (see
    :func:`input_grids`): ``xs [n]``, ``ys [n]``, ``[M + 1]`` grids ``[n, n]``, levels."""
    xs, ys, grids, levels = input_grids(view["inputs"], n)
    return xs, ys, [*grids, barycenter_grid(view["means"], view["covs"], xs, ys)], levels


def input_grids(inputs: list, n: int = 120) -> tuple[np.ndarray, np.ndarray, list, np.ndarray]:
    """``-log p`` of every input mixture on one grid covering them all (means +- 3 sqrt of
    the largest covariance trace): ``xs [n]``, ``ys [n]``, ``[M]`` grids ``[n, n]`` (rows =
    y) and the notebook's contour levels above their minimum. The barycenter's support
    means are convex combinations of the inputs' means, so the grid covers it too; it
    depends on the inputs only and is computed once per run, not per frame."""
    pts = np.concatenate([g.means for g in inputs])
    spread = np.sqrt(max(float(np.max([np.trace(c) for g in inputs for c in g.covs])), 1e-6))
    lo, hi = pts.min(0) - 3 * spread, pts.max(0) + 3 * spread
    xs, ys = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    grids = [
        np.asarray(_nld(GMM(*(jnp.asarray(x, jnp.float32) for x in g)), xs, ys)) for g in inputs
    ]
    return xs, ys, grids, notebook_levels(min(float(g.min()) for g in grids))


def barycenter_grid(means: np.ndarray, covs: np.ndarray, xs: np.ndarray, ys: np.ndarray):
    """``-log p`` ``[H, W]`` of the barycenter (uniform weights on its support
    ``means [B, 2]``, ``covs [B, 2, 2]``) on the grid ``xs [W] x ys [H]``."""
    w = np.full(len(means), 1.0 / len(means))
    return np.asarray(_nld(GMM(*(jnp.asarray(x, jnp.float32) for x in (w, means, covs))), xs, ys))


def notebook_levels(floor: float, n: int = 6) -> np.ndarray:
    """Contour levels of ``-log p`` spaced logarithmically above its minimum ``floor``
    (0.5 to ~15.4 nats above it), as the barycenter notebook's figure."""
    return floor + np.logspace(0, 1.2, n) - 0.5


_nld = jax.jit(bc.neg_log_density)
