"""Recorded coupled-EM runs: one serialisable spec gives the same numbers in the app or headless.

A :class:`CoupledEMRun` owns the solver state of one run (one browser session holds one).
Every frame is one jitted :func:`frame` call and one device-to-host copy. The run records
what it did as segments (frames, their EM iterations and the values they ran with), so
:meth:`CoupledEMRun.spec` returns a :class:`RunSpec` that :meth:`CoupledEMRun.from_spec`
turns back into the same state, bit for bit, on the same machine and library version.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from gmmot_core import coupled_em as ce
from gmmot_core.buckets import bucket, pad_points
from gmmot_core.io import check_cloud
from gmmot_core.mixture import GMM, fit_em, kmeans_pp, log_joint_features
from gmmot_runs.coupled_em_spec import (
    BOUNDS,
    PRESETS,
    CoupledEMKnobs,
    RunSpec,
    SpecError,
    Structure,
    gmm_to_dict,
    preset_clouds,
)
from gmmot_runs.figures import coupled_em_figure
from gmmot_runs.run import Run

__all__ = [
    "BOUNDS",
    "LABEL_LIMIT",
    "PRESETS",
    "CoupledEMKnobs",
    "CoupledEMRun",
    "RunSpec",
    "SpecError",
    "Structure",
    "clouds_csv",
    "frame",
    "initial_mixtures",
    "preset_clouds",
]

LABEL_LIMIT = 200_000  # above this many points per cloud, frames carry no point labels
CLOUD_BUCKET = 512  # the smallest cloud bucket: clouds are padded with zero-weight points


# -- the jitted frame -------------------------------------------------------------------


@partial(jax.jit, static_argnames=("n_components", "steps"))
def _pooled_fit(key, pooled, weights, n_components: int, steps: int):
    # the weighted spread: zero-weight rows (bucket padding) change nothing
    w = weights / jnp.sum(weights)
    mean = w @ pooled
    scale = jnp.sqrt(jnp.mean(w @ (pooled - mean) ** 2))
    ridge = 1e-6 * jnp.maximum(scale, 1e-12) ** 2
    return fit_em(kmeans_pp(key, pooled, n_components, weights), pooled, weights, steps, ridge)


def initial_mixtures(
    points0, points1, k: int, seed: int = 0, weights0=None, weights1=None, steps: int = 20
) -> tuple[GMM, GMM]:
    """The notebook's start: kmeans++ + ``steps`` EM on the pooled clouds, for both sides.

    A tiny ridge (1e-6 x the pooled variance) keeps covariances SPD on degenerate clouds.
    Non-finite rows are left out. Returns host (numpy float32) mixtures.
    """
    p0, p1 = np.asarray(points0, np.float32), np.asarray(points1, np.float32)
    w0 = np.ones(len(p0), np.float32) if weights0 is None else np.asarray(weights0, np.float32)
    w1 = np.ones(len(p1), np.float32) if weights1 is None else np.asarray(weights1, np.float32)
    pooled = np.concatenate([p0, p1])
    w = np.concatenate([w0, w1])
    ok = np.all(np.isfinite(pooled), axis=1) & np.isfinite(w) & (w >= 0)
    pooled, w = pad_points(pooled[ok], w[ok], bucket(int(ok.sum()), CLOUD_BUCKET))
    g = _pooled_fit(jax.random.key(seed), jnp.asarray(pooled), jnp.asarray(w), k, steps)
    g = GMM(*(np.asarray(x, np.float32) for x in jax.device_get(g)))
    return g, g


@partial(jax.jit, static_argnames=("config", "with_labels"))
def _frame(state, data, config, counts, with_labels: bool):
    state = ce.run(state, data, config, counts)
    g0, g1 = ce.mixtures(state)
    view = {
        "gmm0": g0,
        "gmm1": g1,
        "report": ce.coupling_report(state, config),
        "traces": state.traces,
        "iteration": state.iteration,
        "status": state.status,
        "first_bad": state.first_bad,
    }
    if with_labels:
        for i, (g, feats) in enumerate(((g0, data.feats0), (g1, data.feats1))):
            view[f"labels{i}"] = jnp.argmax(log_joint_features(g, feats), -1).astype(jnp.int8)
    return state, view


def frame(state, data, config, counts, advance: bool = True):
    """One animation frame: ``run(state)`` (``counts = (em_steps, m_steps)``, traced) +
    the view.

    Returns ``(new device state, host view)``; the view holds both mixtures, the coupling
    report, traces, iteration, status messages and point labels (clouds up to
    ``LABEL_LIMIT`` points), copied to the host in one transfer.
    """
    n = max(data.feats0.phi.shape[0], data.feats1.phi.shape[0])
    if not advance:  # the view alone: zero EM iterations (traced), the same program
        counts = (jnp.zeros_like(counts[0]), counts[1])
    state, view = _frame(state, data, config, counts, n <= LABEL_LIMIT)
    view = jax.device_get(view)
    status = int(view["status"])
    view["messages"] = ce.describe_status(status)
    view["rolled_back"] = bool(status & ce.ROLLED_BACK)
    return state, view


# -- the run -----------------------------------------------------------------------------


@dataclass
class CoupledEMRun(Run):
    """Solver state of one run; :meth:`step` advances one frame and records it.

    ``data`` describes the clouds for the spec: ``{"preset": name, **params}`` or
    ``{"inline": True}`` (the points themselves are then written into the spec).
    ``initial`` overrides the pooled kmeans++/EM start (used by :meth:`from_spec`).
    """

    points0: np.ndarray
    points1: np.ndarray
    weights0: np.ndarray | None = None
    weights1: np.ndarray | None = None
    knobs: CoupledEMKnobs = field(default_factory=CoupledEMKnobs)
    structure: Structure = field(default_factory=Structure)
    seed: int = 0
    data: dict = field(default_factory=lambda: {"inline": True})
    initial: tuple[GMM, GMM] | None = None

    kind = "coupled_em"
    Spec = RunSpec
    counter = ("iteration", "EM iterations")

    def __post_init__(self) -> None:
        self._check(self.structure.k)  # the clouds are fixed for the run's life
        self.reset(self.initial)

    def reset(self, initial: tuple[GMM, GMM] | None = None) -> dict:
        """Back to the initial mixtures (kmeans++ + EM on the pooled clouds by default)."""
        self._config = self.structure.config()
        # each cloud padded to a bucket with zero-weight points: one program per bucket
        padded = [
            pad_points(
                p, np.ones(len(p), np.float32) if w is None else w, bucket(len(p), CLOUD_BUCKET)
            )
            for p, w in ((self.points0, self.weights0), (self.points1, self.weights1))
        ]
        self._data = ce.PairData.make(padded[0][0], padded[1][0], padded[0][1], padded[1][1])
        if initial is None:
            initial = initial_mixtures(
                self.points0,
                self.points1,
                self.structure.k,
                self.seed,
                self.weights0,
                self.weights1,
            )
        self.initial = initial
        self.segments = []
        g0, g1 = (GMM(*(jnp.asarray(x) for x in g)) for g in initial)
        self._state = ce.init(g0, g1, self.knobs.to_core(), self._config)
        self._advance(False)
        return self.view

    def _check(self, k: int) -> None:
        for i, (p, w) in enumerate(((self.points0, self.weights0), (self.points1, self.weights1))):
            check_cloud(p, k, f"cloud {i}", w)

    def set(self, **values) -> None:
        """Change continuous knobs (:class:`CoupledEMKnobs`): they act from the next
        frame on, without recompiling."""
        self.knobs.update(**values)
        self._state = self._state._replace(knobs=self.knobs.to_core())

    def set_structure(self, **values) -> dict:
        """Change K (re-initialises), M-steps or EM iterations per frame (next frame).
        A K the clouds cannot carry raises ValueError and changes nothing."""
        if "k" in values:
            self._check(values["k"])
        for name, value in values.items():
            setattr(self.structure, name, value)
        if "k" in values or "trace_length" in values:
            return self.reset()
        self._config = self.structure.config()
        return self.view

    def _advance(self, advance: bool) -> None:
        counts = self.structure.counts()
        self._state, view = frame(self._state, self._data, self._config, counts, advance)
        for i, p in enumerate((self.points0, self.points1)):  # the user's rows only
            if f"labels{i}" in view:
                view[f"labels{i}"] = view[f"labels{i}"][: len(p)]
        self._view = view

    @property
    def view(self) -> dict:
        return self._view

    @property
    def stopped(self) -> bool:
        """A diverging update was rolled back: the run keeps its last good mixtures."""
        return bool(self._view["rolled_back"])

    @property
    def messages(self) -> list[str]:
        return list(self._view["messages"])

    def step(self) -> dict:
        """One frame (``em_per_frame`` EM iterations); a diverging update never lands:
        the core keeps the last good mixtures and says so in ``view["rolled_back"]``."""
        s, k = self.structure, self.knobs
        values = {"m_steps": s.m_steps, "epsilon": k.epsilon, "tau": k.tau}
        values |= {"weight_transport": k.weight_transport, "learning_rate": k.learning_rate}
        self.play(s.em_per_frame, **values)
        return self.view

    def play(
        self, steps: int, m_steps: int, epsilon: float, tau: float, weight_transport: float,
        learning_rate: float,
    ) -> None:  # fmt: skip
        """One frame of ``steps`` EM iterations with these core values (tau as recorded:
        not recomputed from rho)."""
        self.structure.em_per_frame, self.structure.m_steps = int(steps), int(m_steps)
        self._config = self.structure.config()
        core = ce.Knobs.make(epsilon, tau, weight_transport, learning_rate)
        self._state = self._state._replace(knobs=core)
        self._advance(True)
        values = {"m_steps": int(m_steps), "epsilon": float(epsilon), "tau": float(tau)}
        values |= {"weight_transport": float(weight_transport)}
        self.record(int(steps), values | {"learning_rate": float(learning_rate)})

    def spec(self) -> RunSpec:
        """Everything needed to replay this run from the start to the current frame."""
        if "preset" in self.data:
            data = dict(self.data)
        else:
            data = {"inline": True}
            for i, (p, w) in enumerate(
                ((self.points0, self.weights0), (self.points1, self.weights1))
            ):
                data[f"points{i}"] = np.asarray(p, np.float32).tolist()
                data[f"weights{i}"] = None if w is None else np.asarray(w, np.float32).tolist()
        return RunSpec(
            data=data,
            k=self.structure.k,
            seed=self.seed,
            trace_length=self.structure.trace_length,
            initial=self.initial,
            segments=copy.deepcopy(self.segments),
            knobs=self.knobs.values(),
        )

    @classmethod
    def start(cls, spec: RunSpec) -> CoupledEMRun:
        """The run of ``spec`` at its initial mixtures (the first segment's counts)."""
        d = spec.data
        if "preset" in d:
            p0, p1 = preset_clouds(d["preset"], **{k: v for k, v in d.items() if k != "preset"})
            w0 = w1 = None
        else:
            p0, p1, w0, w1 = d["points0"], d["points1"], d["weights0"], d["weights1"]
        first = spec.segments[0] if spec.segments else None
        structure = Structure(
            k=spec.k,
            m_steps=first.values["m_steps"] if first else Structure.m_steps,
            em_per_frame=first.steps if first else Structure.em_per_frame,
            trace_length=spec.trace_length,
        )
        knobs = CoupledEMKnobs(**spec.knobs)
        return cls(p0, p1, w0, w1, knobs, structure, spec.seed, dict(d), spec.initial)

    def results(self) -> dict:
        """The mixtures, the coupling, the traces and the status, as plain JSON types."""
        return _results(self._view)

    def figure(self, fmt: str, view: dict | None = None) -> bytes:
        res = _results(self._view if view is None else view)
        return coupled_em_figure(res, self.points0, self.points1, fmt=fmt)


# -- results --------------------------------------------------------------------------------


def clouds_csv(clouds, weights) -> str:
    """Both clouds as one CSV ``cloud,x,y,weight`` (weight 1 where a cloud has none)."""
    out = io.StringIO()
    out.write("cloud,x,y,weight\n")
    for i, (pts, w) in enumerate(zip(clouds, weights, strict=True)):
        ws = np.ones(len(pts), np.float32) if w is None else w
        rows = np.column_stack([np.full(len(pts), i), pts, ws])
        np.savetxt(out, rows, fmt=["%d", "%.9g", "%.9g", "%.9g"], delimiter=",")
    return out.getvalue()


def _results(view: dict) -> dict:
    rep = view["report"]
    n = int(view["iteration"])
    scalars = ("total_mass", "mw2", "uw2", "kl_a", "kl_b", "reg_ot_cost", "rho", "tau", "epsilon")
    return {
        "format": "gmmot.coupled_em.results",
        "iteration": n,
        "status": ce.describe_status(int(view["status"])),
        "first_bad": int(view["first_bad"]),
        "gmm0": gmm_to_dict(view["gmm0"]),
        "gmm1": gmm_to_dict(view["gmm1"]),
        "coupling": {
            "raw": np.asarray(rep.coupling).tolist(),
            "normalized": np.asarray(rep.normalized).tolist(),
            "cost": np.asarray(rep.cost).tolist(),
            "path_factor": np.asarray(rep.path_factor).tolist(),
            **{s: float(getattr(rep, s)) for s in scalars},
            "sinkhorn_iterations": int(rep.n_iters),
            "converged": bool(rep.converged),
        },
        "traces": {
            name: np.asarray(getattr(view["traces"], name))[:n].tolist()
            for name in ("q0", "q1", "transport", "objective", "sinkhorn_iters")
        },
    }
