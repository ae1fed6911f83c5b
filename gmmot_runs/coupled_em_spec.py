"""Coupled-EM settings and parameter files: the knobs, the static structure, what its
segments record and :class:`RunSpec` (read with field-named errors), host side.

A parameter file (kind ``coupled_em``: ``{"kind", "version", "gmmot", "iterations", "data",
"structure", "knobs", "initial", "segments"}``) holds the data (a preset or inline clouds), the
initial mixtures and every segment of frames the run played; :func:`~gmmot_runs.
coupled_em.CoupledEMRun.from_spec` plays it back bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import param

from gmmot_core import coupled_em as ce
from gmmot_core import synthetic
from gmmot_core.mixture import GMM
from gmmot_core.sinkhorn import tau_from_rho
from gmmot_runs.knobs import Knobs, Settings, log_grid, number
from gmmot_runs.segments import Layout, Segment, bounded, knob, read_segments
from gmmot_runs.spec import Fields, SpecError, decode, envelope, write

__all__ = [
    "BOUNDS",
    "PRESETS",
    "SEGMENTS",
    "CoupledEMKnobs",
    "CoupledEMSettings",
    "RunSpec",
    "SpecError",
    "Structure",
    "gmm_to_dict",
    "preset_clouds",
]

# the one set of bounds: the screen's sliders and the parameter-file reader both use it
BOUNDS = {"k": (1, 10), "m_steps": (1, 100), "em_per_frame": (1, 20)}

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


class CoupledEMKnobs(Knobs):
    """Coupled EM's continuous knobs, in the UI's units (``balanced`` means tau = 1)."""

    epsilon = number(
        1e-2, (1e-4, 10.0), "epsilon (entropic)",
        "Entropic regularisation of the coupling between the components.", log_grid(-4, 1),
    )  # fmt: skip
    rho = number(
        1.0, (1e-3, 1e4), "rho (mass penalty)",
        "KL penalty on the marginals (unbalanced); tau = rho / (rho + epsilon).",
        log_grid(-3, 4),
    )  # fmt: skip
    balanced = param.Boolean(
        True, label="balanced (no mass created or destroyed)",
        doc="Exact marginals (tau = 1), as the notebook runs first.",
    )  # fmt: skip
    weight_transport = number(
        1e-2, (0.0, 100.0), "transport weight",
        "Weight of the regularised OT cost in the objective (the notebook's 0.01 balanced, "
        "0.1 unbalanced).", log_grid(-3, 2, zero=True),
    )  # fmt: skip
    learning_rate = number(
        1e-3, (1e-4, 0.1), "learning rate", "Adam's step in the M-step.", log_grid(-4, -1)
    )

    @property
    def tau(self) -> float:
        if self.balanced:
            return 1.0
        return float(tau_from_rho(self.epsilon, self.rho))

    def to_core(self) -> ce.Knobs:
        """The traced core values (float32)."""
        return ce.Knobs.make(self.epsilon, self.tau, self.weight_transport, self.learning_rate)


class CoupledEMSettings(Settings):
    """The structure the screen offers (``Structure``'s defaults and ``BOUNDS``): K
    compiles a new program; the two counts are traced (no recompile)."""

    k = param.Integer(3, bounds=BOUNDS["k"], label="components K", doc="Components per cloud.")
    m_steps = param.Integer(
        20, bounds=BOUNDS["m_steps"], label="M-steps (Adam)", doc="Adam steps per M-step."
    )
    em_per_frame = param.Integer(
        1, bounds=BOUNDS["em_per_frame"], label="EM iterations per frame",
        doc="EM iterations between two frames.",
    )  # fmt: skip


@dataclass
class Structure:
    """Settings that change shapes or the compiled program."""

    k: int = CoupledEMSettings.param.k.default
    m_steps: int = CoupledEMSettings.param.m_steps.default
    em_per_frame: int = CoupledEMSettings.param.em_per_frame.default
    trace_length: int = 2048

    def config(self) -> ce.CoupledEMConfig:
        """The static part (one executable per K and trace length); the counts below are
        passed traced, so the M-steps and EM-per-frame sliders never recompile."""
        return ce.CoupledEMConfig(warm_start=True, trace_length=self.trace_length)

    def counts(self) -> tuple[jax.Array, jax.Array]:
        """``(em_per_frame, m_steps)`` as traced int32 scalars."""
        return jnp.int32(self.em_per_frame), jnp.int32(self.m_steps)


# a recorded frame: its steps are the EM iterations (version 1 named them em_per_frame);
# tau as the solver saw it (1 balanced), not rho: tau recomputed from rho might differ in
# the last bit
SEGMENTS = Layout(
    BOUNDS["em_per_frame"],
    {
        "m_steps": knob(CoupledEMSettings, "m_steps"),
        "epsilon": knob(CoupledEMKnobs, "epsilon"),
        "tau": bounded(0.0, 1.0),
        "weight_transport": knob(CoupledEMKnobs, "weight_transport"),
        "learning_rate": knob(CoupledEMKnobs, "learning_rate"),
    },
    v1_steps="em_per_frame",
)


# -- the spec --------------------------------------------------------------------------------


@dataclass
class RunSpec:
    """A replayable run: data, structure, initial mixtures and the recorded segments."""

    data: dict
    k: int
    seed: int
    trace_length: int
    initial: tuple[GMM, GMM]
    segments: list[Segment]
    knobs: dict = field(default_factory=lambda: CoupledEMKnobs().values())

    @property
    def iterations(self) -> int:
        return sum(s.frames * s.steps for s in self.segments)

    def body(self) -> dict:
        """The fields after the envelope."""
        return {
            "iterations": self.iterations,
            "data": self.data,
            "structure": {"k": self.k, "seed": self.seed, "trace_length": self.trace_length},
            "knobs": self.knobs,
            "initial": {f"gmm{i}": gmm_to_dict(g) for i, g in enumerate(self.initial)},
            "segments": [s.to_json() for s in self.segments],
        }

    def to_json(self) -> str:
        return write("coupled_em", self.body())

    @classmethod
    def from_json(cls, text: str | bytes) -> RunSpec:
        return cls.from_dict(decode(text))

    @classmethod
    def from_dict(cls, obj: Any) -> RunSpec:
        """Validate a decoded parameter file; raises :class:`SpecError` naming the field."""
        obj = envelope(Fields(obj, "").obj, "coupled_em")
        top = Fields(obj, "")
        top.expect(
            {"kind", "version", "iterations", "data", "structure"},
            {"gmmot", "knobs", "initial", "segments"},
        )
        data = _parse_data(top.sub("data"))
        st = top.sub("structure")
        st.expect({"k", "seed", "trace_length"})
        k = st.get("k", int, *BOUNDS["k"])
        seed = st.get("seed", int, lo=0, hi=2**31 - 1)
        trace_length = st.get("trace_length", int, lo=1, hi=1_000_000)
        kn = top.sub("knobs")
        kn.expect(set(CoupledEMKnobs.names()))
        knobs = {n: CoupledEMKnobs.check(n, kn.obj[n], f"field 'knobs.{n}'") for n in kn.obj}
        ini = top.sub("initial")
        ini.expect({"gmm0", "gmm1"})
        initial = tuple(_gmm_from_fields(ini.sub(f"gmm{i}"), k) for i in (0, 1))
        top.get("segments", list)
        segments = read_segments(obj, obj["version"], SEGMENTS)
        spec = cls(data, k, seed, trace_length, initial, segments, knobs)
        if top.get("iterations", int, lo=0) != spec.iterations:
            raise SpecError(
                f"field 'iterations': {obj['iterations']} does not match the segments "
                f"({spec.iterations} EM iterations)"
            )
        return spec


def gmm_to_dict(g: GMM) -> dict:
    return {
        "weights": np.asarray(g.weights, np.float32).tolist(),
        "means": np.asarray(g.means, np.float32).tolist(),
        "covs": np.asarray(g.covs, np.float32).tolist(),
    }


def _gmm_from_fields(f: Fields, k: int) -> GMM:
    f.expect({"weights", "means", "covs"})
    w = f.matrix("weights", (k,))
    m = f.matrix("means", (k, 2))
    c = f.matrix("covs", (k, 2, 2))
    if np.any(w <= 0):
        raise SpecError(f"field '{f.prefix}weights': weights must be positive")
    det = c[:, 0, 0] * c[:, 1, 1] - c[:, 0, 1] * c[:, 1, 0]
    if np.any(c[:, 0, 0] <= 0) or np.any(det <= 0) or not np.allclose(c, c.transpose(0, 2, 1)):
        raise SpecError(f"field '{f.prefix}covs': covariances must be symmetric positive definite")
    return GMM(w, m, c)


def _parse_data(f: Fields) -> dict:
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
        out[f"points{i}"] = f.matrix(f"points{i}", (-1, 2))
        if f.obj[f"weights{i}"] is None:
            out[f"weights{i}"] = None
        else:
            w = f.matrix(f"weights{i}", (len(out[f"points{i}"]),))
            if np.any(w < 0):
                raise SpecError(f"field 'data.weights{i}': weights must be >= 0")
            out[f"weights{i}"] = w
    return out
