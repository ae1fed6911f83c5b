"""Recorded coupled-EM runs: one serialisable spec gives the same numbers in the app or headless.

A :class:`CoupledEMRun` owns the solver state of one run (one browser session holds one).
Every frame is one jitted :func:`frame` call and one device-to-host copy. The run records
what it did as :class:`Segment` s (frames, the static settings and the knob values they ran
with), so :meth:`CoupledEMRun.spec` returns a :class:`RunSpec` that :func:`replay` turns
back into the same state, bit for bit, on the same machine and library version.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gmmot_core import coupled_em as ce
from gmmot_core import synthetic
from gmmot_core.io import check_cloud
from gmmot_core.mixture import GMM, fit_em, kmeans_pp, log_joint_features
from gmmot_core.sinkhorn import tau_from_rho

__all__ = [
    "LABEL_LIMIT",
    "PRESETS",
    "SPEC_VERSION",
    "CoupledEMRun",
    "HostKnobs",
    "RunSpec",
    "Segment",
    "SpecError",
    "Structure",
    "frame",
    "initial_mixtures",
    "preset_clouds",
    "replay",
    "results",
]

SPEC_VERSION = 1
LABEL_LIMIT = 200_000  # above this many points per cloud, frames carry no point labels

PRESETS = {
    "demo pair": ("n", "seed"),
    "random pair": ("n", "seed", "shift", "rotation", "reweight"),
    "moons -> rings": ("n", "seed"),
}


def preset_clouds(preset: str, **params) -> tuple[np.ndarray, np.ndarray]:
    """The two clouds ``([N, 2], [N, 2])`` float32 of a built-in preset (deterministic)."""
    n, seed = int(params["n"]), int(params["seed"])
    if preset == "demo pair":
        return synthetic.demo_pair(n, seed)
    if preset == "random pair":
        return synthetic.random_pair(
            n,
            seed,
            shift=float(params["shift"]),
            rotation=float(params["rotation"]),
            reweight=float(params["reweight"]),
        )
    if preset == "moons -> rings":
        return synthetic.moons(n, seed), synthetic.rings(n, seed + 1)
    raise ValueError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")


# -- host-side settings ---------------------------------------------------------------


@dataclass
class HostKnobs:
    """Continuous knobs in the UI's units (rho = inf or ``balanced`` means tau = 1)."""

    epsilon: float = 1e-2
    rho: float = 1.0
    balanced: bool = False
    weight_transport: float = 0.1
    learning_rate: float = 1e-3

    @property
    def tau(self) -> float:
        if self.balanced or not math.isfinite(self.rho):
            return 1.0
        return float(tau_from_rho(self.epsilon, self.rho))

    def to_core(self) -> ce.Knobs:
        return ce.Knobs.make(self.epsilon, self.tau, self.weight_transport, self.learning_rate)


@dataclass
class Structure:
    """Settings that change shapes or the compiled program."""

    k: int = 3
    m_steps: int = 20
    em_per_frame: int = 1
    trace_length: int = 2048

    def config(self) -> ce.CoupledEMConfig:
        """The static part (one executable per K and trace length); the counts below are
        passed traced, so the M-steps and EM-per-frame sliders never recompile."""
        return ce.CoupledEMConfig(warm_start=True, trace_length=self.trace_length)

    def counts(self) -> tuple[jax.Array, jax.Array]:
        """``(em_per_frame, m_steps)`` as traced int32 scalars."""
        return jnp.int32(self.em_per_frame), jnp.int32(self.m_steps)


@dataclass
class Segment:
    """``frames`` consecutive frames run with the same settings and knob values."""

    frames: int
    em_per_frame: int
    m_steps: int
    epsilon: float
    tau: float
    weight_transport: float
    learning_rate: float


# -- the jitted frame -------------------------------------------------------------------


@partial(jax.jit, static_argnames=("n_components", "steps"))
def _pooled_fit(key, pooled, weights, n_components: int, steps: int):
    scale = jnp.sqrt(jnp.mean(jnp.var(pooled, axis=0)))
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
    g = _pooled_fit(jax.random.key(seed), jnp.asarray(pooled[ok]), jnp.asarray(w[ok]), k, steps)
    g = GMM(*(np.asarray(x, np.float32) for x in jax.device_get(g)))
    return g, g


@partial(jax.jit, static_argnames=("config", "advance", "with_labels"))
def _frame(state, data, config, counts, advance: bool, with_labels: bool):
    if advance:
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
    state, view = _frame(state, data, config, counts, advance, n <= LABEL_LIMIT)
    view = jax.device_get(view)
    status = int(view["status"])
    view["messages"] = ce.describe_status(status)
    view["rolled_back"] = bool(status & ce.ROLLED_BACK)
    return state, view


# -- the run -----------------------------------------------------------------------------


@dataclass
class CoupledEMRun:
    """Solver state of one run; :meth:`step` advances one frame and records it.

    ``data`` describes the clouds for the spec: ``{"preset": name, **params}`` or
    ``{"inline": True}`` (the points themselves are then written into the spec).
    ``initial`` overrides the pooled kmeans++/EM start (used by :func:`replay`).
    """

    points0: np.ndarray
    points1: np.ndarray
    weights0: np.ndarray | None = None
    weights1: np.ndarray | None = None
    knobs: HostKnobs = field(default_factory=HostKnobs)
    structure: Structure = field(default_factory=Structure)
    seed: int = 0
    data: dict = field(default_factory=lambda: {"inline": True})
    initial: tuple[GMM, GMM] | None = None

    def __post_init__(self) -> None:
        self._check(self.structure.k)  # the clouds are fixed for the run's life
        self.reset(self.initial)

    def reset(self, initial: tuple[GMM, GMM] | None = None) -> dict:
        """Back to the initial mixtures (kmeans++ + EM on the pooled clouds by default)."""
        self._config = self.structure.config()
        self._data = ce.PairData.make(self.points0, self.points1, self.weights0, self.weights1)
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
        self.segments: list[Segment] = []
        g0, g1 = (GMM(*(jnp.asarray(x) for x in g)) for g in initial)
        self._state = ce.init(g0, g1, self.knobs.to_core(), self._config)
        self._advance(False)
        return self.view

    def _check(self, k: int) -> None:
        for i, (p, w) in enumerate(((self.points0, self.weights0), (self.points1, self.weights1))):
            check_cloud(p, k, f"cloud {i}", w)

    def set_knobs(self, **values) -> None:
        """Change continuous knobs: they act from the next frame on, without recompiling."""
        for name, value in values.items():
            setattr(self.knobs, name, value)
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
        self._state, self.view = frame(self._state, self._data, self._config, counts, advance)

    def step(self) -> dict:
        """One frame (``em_per_frame`` EM iterations); a diverging update never lands:
        the core keeps the last good mixtures and says so in ``view["rolled_back"]``."""
        self._record()
        self._advance(True)
        return self.view

    def play(self, seg: Segment) -> dict:
        """Run a recorded segment: ``seg.frames`` frames with its settings and the exact
        core knob values it recorded (tau as stored, not recomputed from rho)."""
        self.structure.em_per_frame, self.structure.m_steps = seg.em_per_frame, seg.m_steps
        self._config = self.structure.config()
        core = ce.Knobs.make(seg.epsilon, seg.tau, seg.weight_transport, seg.learning_rate)
        self._state = self._state._replace(knobs=core)
        for _ in range(seg.frames):
            self._advance(True)
        self.segments.append(Segment(**asdict(seg)))
        return self.view

    def _record(self) -> None:
        s, k = self.structure, self.knobs
        seg = Segment(
            1, s.em_per_frame, s.m_steps, k.epsilon, k.tau, k.weight_transport, k.learning_rate
        )
        last = self.segments[-1] if self.segments else None
        if last is not None and asdict(last) | {"frames": 1} == asdict(seg):
            last.frames += 1
        else:
            self.segments.append(seg)

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
            segments=[Segment(**asdict(s)) for s in self.segments],
            knobs=asdict(self.knobs),
        )


# -- the spec --------------------------------------------------------------------------------


class SpecError(ValueError):
    """A malformed parameter file; the message names the offending field."""


@dataclass
class RunSpec:
    """A replayable run: data, structure, initial mixtures and the recorded segments."""

    data: dict
    k: int
    seed: int
    trace_length: int
    initial: tuple[GMM, GMM]
    segments: list[Segment]
    knobs: dict = field(default_factory=lambda: asdict(HostKnobs()))
    version: int = SPEC_VERSION

    @property
    def iterations(self) -> int:
        return sum(s.frames * s.em_per_frame for s in self.segments)

    def to_dict(self) -> dict:
        from gmmot_core import __version__

        return {
            "format": "gmmot.coupled_em.run",
            "version": self.version,
            "library_version": __version__,
            "iterations": self.iterations,
            "data": self.data,
            "structure": {"k": self.k, "seed": self.seed, "trace_length": self.trace_length},
            "knobs": self.knobs,
            "initial": {f"gmm{i}": _gmm_to_dict(g) for i, g in enumerate(self.initial)},
            "segments": [asdict(s) for s in self.segments],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> RunSpec:
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SpecError(f"not a JSON document ({exc})") from None
        return cls.from_dict(obj)

    @classmethod
    def from_dict(cls, obj: Any) -> RunSpec:
        """Validate a decoded parameter file; raises :class:`SpecError` naming the field."""
        top = _Fields(obj, "")
        top.expect(
            {"format", "version", "library_version", "iterations", "data", "structure"},
            {"knobs", "initial", "segments"},
        )
        if top.get("format", str) != "gmmot.coupled_em.run":
            raise SpecError("field 'format': expected 'gmmot.coupled_em.run'")
        version = top.get("version", int)
        if version > SPEC_VERSION:
            raise SpecError(
                f"field 'version': {version} is newer than this gmmot understands "
                f"({SPEC_VERSION}); upgrade gmmot"
            )
        if version < 1:
            raise SpecError(f"field 'version': {version} is not a valid version")
        top.get("library_version", str)
        data = _parse_data(top.sub("data"))
        st = top.sub("structure")
        st.expect({"k", "seed", "trace_length"})
        k = st.get("k", int, lo=1, hi=50)
        seed = st.get("seed", int, lo=0, hi=2**31 - 1)
        trace_length = st.get("trace_length", int, lo=1, hi=1_000_000)
        kn = top.sub("knobs")
        kn.expect(set(asdict(HostKnobs())))
        knobs = {
            "epsilon": kn.get("epsilon", float),
            "rho": kn.get("rho", float),
            "balanced": kn.get("balanced", bool),
            "weight_transport": kn.get("weight_transport", float),
            "learning_rate": kn.get("learning_rate", float),
        }
        ini = top.sub("initial")
        ini.expect({"gmm0", "gmm1"})
        initial = tuple(_gmm_from_fields(ini.sub(f"gmm{i}"), k) for i in (0, 1))
        segs = top.get("segments", list)
        segments = []
        for j, raw in enumerate(segs):
            sf = _Fields(raw, f"segments[{j}].")
            sf.expect(set(Segment.__dataclass_fields__))
            segments.append(
                Segment(
                    frames=sf.get("frames", int, lo=0, hi=10**7),
                    em_per_frame=sf.get("em_per_frame", int, lo=1, hi=1000),
                    m_steps=sf.get("m_steps", int, lo=1, hi=10_000),
                    epsilon=sf.get("epsilon", float),
                    tau=sf.get("tau", float),
                    weight_transport=sf.get("weight_transport", float),
                    learning_rate=sf.get("learning_rate", float),
                )
            )
        spec = cls(data, k, seed, trace_length, initial, segments, knobs, version)
        if top.get("iterations", int, lo=0) != spec.iterations:
            raise SpecError(
                f"field 'iterations': {obj['iterations']} does not match the segments "
                f"({spec.iterations} EM iterations)"
            )
        return spec


class _Fields:
    """Typed access to one JSON object with field paths in the error messages."""

    def __init__(self, obj: Any, prefix: str):
        if not isinstance(obj, dict):
            where = f"field '{prefix[:-1]}'" if prefix else "the document"
            raise SpecError(f"{where}: expected an object, got {type(obj).__name__}")
        self.obj, self.prefix = obj, prefix

    def expect(self, required: set[str], optional: set[str] = frozenset()) -> None:
        unknown = sorted(set(self.obj) - required - set(optional))
        if unknown:
            raise SpecError(f"unknown field '{self.prefix}{unknown[0]}'")
        missing = sorted(required - set(self.obj))
        if missing:
            raise SpecError(f"missing field '{self.prefix}{missing[0]}'")

    def sub(self, name: str) -> _Fields:
        if name not in self.obj:
            raise SpecError(f"missing field '{self.prefix}{name}'")
        return _Fields(self.obj[name], f"{self.prefix}{name}.")

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


def _matrix(fields: _Fields, name: str, shape: tuple[int, ...]) -> np.ndarray:
    path = f"{fields.prefix}{name}"
    raw = fields.get(name, list)
    try:
        arr = np.asarray(raw, np.float64)
    except (ValueError, TypeError):
        raise SpecError(f"field '{path}': expected numbers of shape {shape}") from None
    variable = shape[0] < 0 and arr.ndim == len(shape) and arr.shape[1:] == shape[1:]
    if arr.shape != shape and not variable:
        raise SpecError(f"field '{path}': expected shape {shape}, got {arr.shape}")
    with np.errstate(over="ignore"):
        out = arr.astype(np.float32)
    if not np.all(np.isfinite(out)):  # NaN, inf, or beyond float32's range (~3e38)
        raise SpecError(f"field '{path}': contains NaN, infinite or out-of-range values")
    return out


def _gmm_to_dict(g: GMM) -> dict:
    return {
        "weights": np.asarray(g.weights, np.float32).tolist(),
        "means": np.asarray(g.means, np.float32).tolist(),
        "covs": np.asarray(g.covs, np.float32).tolist(),
    }


def _gmm_from_fields(f: _Fields, k: int) -> GMM:
    f.expect({"weights", "means", "covs"})
    w = _matrix(f, "weights", (k,))
    m = _matrix(f, "means", (k, 2))
    c = _matrix(f, "covs", (k, 2, 2))
    if np.any(w <= 0):
        raise SpecError(f"field '{f.prefix}weights': weights must be positive")
    det = c[:, 0, 0] * c[:, 1, 1] - c[:, 0, 1] * c[:, 1, 0]
    if np.any(c[:, 0, 0] <= 0) or np.any(det <= 0) or not np.allclose(c, c.transpose(0, 2, 1)):
        raise SpecError(f"field '{f.prefix}covs': covariances must be symmetric positive definite")
    return GMM(w, m, c)


def _parse_data(f: _Fields) -> dict:
    if "preset" in f.obj:
        name = f.get("preset", str)
        if name not in PRESETS:
            raise SpecError(f"field 'data.preset': unknown preset {name!r}")
        f.expect({"preset", *PRESETS[name]})
        out = {"preset": name}
        for p in PRESETS[name]:
            if p in ("n", "seed"):
                hi = 2_000_000 if p == "n" else 2**31 - 1
                out[p] = f.get(p, int, lo=2 if p == "n" else 0, hi=hi)
            else:
                out[p] = f.get(p, float)
        return out
    f.expect({"inline", "points0", "points1", "weights0", "weights1"})
    out = {"inline": True}
    for i in (0, 1):
        out[f"points{i}"] = _matrix(f, f"points{i}", (-1, 2))
        if f.obj[f"weights{i}"] is None:
            out[f"weights{i}"] = None
        else:
            w = _matrix(f, f"weights{i}", (len(out[f"points{i}"]),))
            if np.any(w < 0):
                raise SpecError(f"field 'data.weights{i}': weights must be >= 0")
            out[f"weights{i}"] = w
    return out


# -- replay and results -------------------------------------------------------------------------


def replay(spec: RunSpec) -> CoupledEMRun:
    """Run ``spec`` headless: the same frames with the same settings as the recorded run."""
    d = spec.data
    if "preset" in d:
        p0, p1 = preset_clouds(d["preset"], **{k: v for k, v in d.items() if k != "preset"})
        w0 = w1 = None
    else:
        p0, p1, w0, w1 = d["points0"], d["points1"], d["weights0"], d["weights1"]
    first = spec.segments[0] if spec.segments else None
    structure = Structure(
        k=spec.k,
        m_steps=first.m_steps if first else 20,
        em_per_frame=first.em_per_frame if first else 1,
        trace_length=spec.trace_length,
    )
    knobs = HostKnobs(**spec.knobs)
    run = CoupledEMRun(p0, p1, w0, w1, knobs, structure, spec.seed, dict(d), spec.initial)
    for seg in spec.segments:
        run.play(seg)
    return run


def results(view: dict) -> dict:
    """A run's current numbers as plain JSON types (mixtures, coupling, traces, status)."""
    rep = view["report"]
    n = int(view["iteration"])
    scalars = ("total_mass", "mw2", "uw2", "kl_a", "kl_b", "reg_ot_cost", "rho", "tau", "epsilon")
    return {
        "format": "gmmot.coupled_em.results",
        "iteration": n,
        "status": ce.describe_status(int(view["status"])),
        "first_bad": int(view["first_bad"]),
        "gmm0": _gmm_to_dict(view["gmm0"]),
        "gmm1": _gmm_to_dict(view["gmm1"]),
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
