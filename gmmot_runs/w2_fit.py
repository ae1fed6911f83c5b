"""A recorded W2 fit (:mod:`gmmot_core.gmm_w2_fit`): one cloud, one mixture descended by
Adam on the exact semi-discrete W2^2, and EM's fit from the same start for comparison.

:class:`W2FitRun` owns one run (a browser session holds one). Each frame is one jitted
call (its steps, the Laguerre cells and the mixture's raster) and one device-to-host
copy. The frames are recorded as segments (``learning_rate``);
:meth:`W2FitRun.from_spec` plays them back in the same chunks, so the numbers are
identical on the same machine. Runs in float64 (``jax.enable_x64`` around every core
call), as every semi-discrete run.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import param

from gmmot_core import gmm_w2_fit as fit
from gmmot_core.buckets import bucket
from gmmot_core.mixture import GMM, fit_em, log_prob
from gmmot_core.synthetic import moons, outlier_clump, rings, three_blobs
from gmmot_runs import spec as fields
from gmmot_runs.figures import w2_fit_figure
from gmmot_runs.knobs import Knobs, Settings, number
from gmmot_runs.run import Run
from gmmot_runs.segments import Layout, Segment, knob, read_segments

__all__ = [
    "BOUNDS",
    "CLOUDS",
    "DEFAULTS",
    "KIND",
    "W2FitKnobs",
    "W2FitRun",
    "W2FitSpec",
    "cloud_points",
    "em_mixture",
    "fit_inputs",
]

KIND = "w2_fit"
MAX_POINTS = 5000  # each N is its own compiled solver (~1 min on 2 cores)
RESOLUTIONS = (32, 48, 64, 96, 128)
EM_STEPS = 200
# the bounds of the fit's settings (the screen's fields and the spec read them); a
# recorded segment's steps may exceed a frame's (a scripted run plays 40 at once), but
# not the trace ring's
BOUNDS = {
    "k": (1, 8),
    "n": (10, MAX_POINTS),
    "seed": (0, 2**31 - 1),
    "segment_steps": (1, 50),
}
CLOUDS = ("outlier clump", "three blobs", "moons", "rings")


class W2FitSettings(Settings):
    """The W2 fit's settings (a change prepares a new fit). The defaults are the fit a
    first visit prepares; the server's warm-up compiles its program, which serves every K."""

    preset = param.Selector(
        objects=list(CLOUDS), default=CLOUDS[0], label="cloud", doc="The cloud to fit."
    )
    n = param.Integer(600, bounds=BOUNDS["n"], label="points N", doc="Points of the cloud.")
    k = param.Integer(2, bounds=BOUNDS["k"], label="components K", doc="Gaussians fitted.")
    res = param.Selector(
        objects=list(RESOLUTIONS), default=48, label="raster (pixels per side)",
        doc="The raster of the mixture's density in the box around the points.",
    )  # fmt: skip
    seed = param.Integer(
        3, bounds=BOUNDS["seed"], label="seed (cloud and kmeans++ start)",
        doc="Seed of the preset cloud and of the kmeans++ start.",
    )  # fmt: skip


DEFAULTS = W2FitSettings().values()


class W2FitKnobs(Knobs):
    """The W2 fit's continuous knobs."""

    learning_rate = number(
        0.02, (1e-3, 0.2), "learning rate (share of the box)",
        "Adam's step, as a share of the box's side.",
        {f"{v:g}": v for v in (1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2)},
    )  # fmt: skip
    steps_per_frame = param.Integer(
        5, bounds=(1, 20), label="Adam steps per frame", doc="Adam steps between two frames."
    )


SEGMENTS = Layout(BOUNDS["segment_steps"], {"learning_rate": knob(W2FitKnobs, "learning_rate")})

# every fit is padded to this many components (inert, weight 0): one compiled fit per
# (point bucket, raster) for every K, so a change of K does not compile the fit again
K_MAX = BOUNDS["k"][1]


def cloud_points(name: str, n: int, seed: int) -> np.ndarray:
    """``n`` points ``[n, 2]`` float64 of a preset cloud: ``outlier clump`` (two clusters
    and 6% of the points in a far, tight clump: where W2 and EM disagree), ``three blobs``
    (samples of a 3-component mixture), ``moons``, ``rings``."""
    if name == "outlier clump":
        return outlier_clump(n, seed)
    if name == "three blobs":
        return three_blobs(n, seed)
    if name == "moons":
        return np.asarray(moons(n, seed), np.float64)
    if name == "rings":
        return np.asarray(rings(n, seed), np.float64)
    raise fields.SpecError(f"field 'cloud.preset': unknown cloud {name!r}")


@dataclass
class W2FitSpec:
    """A parameter file: the cloud (``{"preset", "n", "seed"}`` or ``{"points",
    "weights"?}``), ``k``, ``res`` (raster side), ``seed`` (kmeans++ start) and the
    recorded ``segments``."""

    cloud: dict
    k: int = 2
    res: int = 48
    seed: int = 0
    segments: list[Segment] = field(default_factory=list)

    def to_json(self) -> str:
        body = {f: getattr(self, f) for f in ("cloud", "k", "res", "seed")}
        return fields.write(KIND, body | {"segments": [s.to_json() for s in self.segments]})

    @classmethod
    def from_json(cls, raw: bytes | str) -> W2FitSpec:
        return cls.from_dict(fields.decode(raw))

    @classmethod
    def from_dict(cls, obj: dict) -> W2FitSpec:
        """Validate a parsed parameter file; :class:`SpecError` names the first bad field."""
        obj = fields.envelope(obj, KIND)
        fields.known(obj, {"kind", "version", "gmmot", "cloud", "k", "res", "seed", "segments"})
        cloud = obj.get("cloud")
        if not isinstance(cloud, dict):
            raise fields.SpecError("field 'cloud': expected an object")
        if "points" in cloud:
            p = fields.points(cloud, "points", MAX_POINTS, prefix="cloud.")
            w = cloud.get("weights")
            fields.known(cloud, {"points", "weights"}, "cloud.")
            if w is not None:
                w = fields.matrix(w, "cloud.weights", (len(p),))
                if np.any(w < 0):
                    raise fields.SpecError(
                        f"field 'cloud.weights': expected {len(p)} finite weights >= 0"
                    )
        else:
            fields.known(cloud, {"preset", "n", "seed"}, "cloud.")
            fields.choice(cloud, "preset", CLOUDS, prefix="cloud.")
            fields.integer(cloud, "n", *BOUNDS["n"], prefix="cloud.")
            fields.integer(cloud, "seed", *BOUNDS["seed"], default=0, prefix="cloud.")
        return cls(
            cloud,
            fields.integer(obj, "k", *BOUNDS["k"]),
            fields.choice(obj, "res", RESOLUTIONS),
            fields.integer(obj, "seed", *BOUNDS["seed"], default=0),
            read_segments(obj, obj["version"], SEGMENTS),
        )


def _user_gmm(g: GMM) -> dict:
    return {k: np.asarray(v, np.float64) for k, v in g._asdict().items()}


def fit_inputs(points, weights, k: int, res: int, seed: int):
    """What a fit starts from (call under x64): the :class:`~gmmot_core.gmm_w2_fit.FitData`
    of ``points [N, 2]`` (``weights [N]`` or None) padded to a bucket of rows (zero-mass
    points: one compiled fit per bucket), the number of fitted points (duplicates
    merged), the :class:`~gmmot_core.gmm_w2_fit.FitConfig` of a ``res``² raster with its
    sizes, and the kmeans++ start (user coordinates). Raises ``ValueError`` on data that
    cannot be fit."""
    data = fit.fit_data(points, weights)
    n_fit = len(data.nu)
    if n_fit < max(2, k):
        raise ValueError(f"{n_fit} distinct points with weight > 0, fewer than K = {k}")
    unpadded = data.points
    data = fit.pad_fit_data(data, bucket(n_fit))
    config = fit.FitConfig(shape=(res, res)).with_sizes(unpadded, len(data.nu))
    start = fit.initial_mixture(jax.random.PRNGKey(seed), data, k)
    return data, n_fit, config, start


def em_mixture(data, n_fit: int, start: GMM, res: int) -> GMM:
    """EM's fit (user coordinates) of the points of ``data`` from ``start``, run in the
    fit's unit coordinates (any data range), its covariances floored as the W2 fit's
    are (:attr:`~gmmot_core.gmm_w2_fit.FitConfig.min_variance` of the ``res``² raster;
    with 1e-8, EM collapsed a component of the outlier clump at K = 6 onto a few points,
    a tenth of a pixel wide, and the W2 solve of its raster did not converge); call
    under x64."""
    ridge = fit.FitConfig(shape=(res, res)).min_variance
    em = fit_em(fit.to_unit(start, data), data.points, data.nu * n_fit, steps=EM_STEPS, ridge=ridge)
    return fit.to_user(em, data)


class W2FitRun(Run):
    """One W2 fit, frame by frame, with EM's fit of the same cloud from the same start."""

    kind = KIND
    Spec = W2FitSpec
    counter = ("step", "W2-fit steps")

    def __init__(self, cloud: dict, k: int = 2, res: int = 48, seed: int = 0):
        """``cloud``: ``{"preset": name, "n": N, "seed": s}`` or ``{"points": [[x, y],
        ...], "weights": [...] (optional)}``. Raises ``ValueError`` on data that cannot
        be fit (the message says why)."""
        self.cloud, self.k, self.res, self.seed = cloud, int(k), int(res), int(seed)
        if "points" in cloud:
            self.points = np.asarray(cloud["points"], np.float64)
            w = cloud.get("weights")
            self.point_weights = None if w is None else np.asarray(w, np.float64)
        else:
            self.points = cloud_points(cloud["preset"], int(cloud["n"]), int(cloud.get("seed", 0)))
            self.point_weights = None
        if len(self.points) > MAX_POINTS:
            raise ValueError(
                f"the W2 fit takes at most {MAX_POINTS} points, got {len(self.points)}"
            )
        with jax.enable_x64(True):
            self.data, self.n_fit, self.config, self.start = fit_inputs(
                self.points, self.point_weights, self.k, self.res, self.seed
            )
            # the fit's points (duplicates merged) in the user's coordinates
            self.user_points = fit.user_points(self.data.points[: self.n_fit], self.data)
            self._em()
        self.knobs = W2FitKnobs()
        self.reset()

    def _em(self) -> None:
        """EM from the same start, in the fit's unit coordinates (any data range), and its
        W2 objective (one step at learning rate 0: the same compiled program)."""
        d = self.data
        self.em = em_mixture(d, self.n_fit, self.start, self.res)
        em = fit.pad_components(self.em, K_MAX)
        state, self.config, _ = fit.advance(fit.init(em, d, self.config, 0.0), d, self.config, 1)
        self.em_w2 = float(fit.w2_user(state.trace.w2[0], d))
        self.em_outside = float(state.trace.outside[0])
        self.em_log_likelihood = self._log_likelihood(self.em)

    def _log_likelihood(self, g: GMM) -> float:
        """Mean log-density of the points (weighted), in the user's coordinates (x64)."""
        return float(jnp.sum(self.data.nu[: self.n_fit] * log_prob(g, self.user_points)))

    def reset(self) -> dict:
        """Back to the kmeans++ start (a cold first solve)."""
        with jax.enable_x64(True):
            start = fit.pad_components(self.start, K_MAX)
            state = fit.init(start, self.data, self.config, self.knobs.learning_rate)
            state, self.config, frame = fit.advance(state, self.data, self.config, 0)
            self.state, self.frame = jax.device_get((state, frame))
        self.segments = []
        self.w2: list[float] = []
        self.outside: list[float] = []
        return self.view

    @property
    def stopped(self) -> bool:
        return bool(int(self.state.status) & fit.HALTED)

    @property
    def messages(self) -> list[str]:
        text = fit.describe_status(int(self.state.status))
        return [text] if text else []

    def set(self, **knobs) -> None:
        """:class:`W2FitKnobs`: the learning rate and the Adam steps of a frame."""
        self.knobs.update(**knobs)

    def step(self) -> dict:
        """One frame: ``steps_per_frame`` Adam steps at ``learning_rate``."""
        self.play(self.knobs.steps_per_frame, learning_rate=self.knobs.learning_rate)
        return self.view

    def play(self, steps: int, learning_rate: float) -> None:
        """One frame of ``steps`` Adam steps (at most the trace ring's)."""
        if self.stopped:
            return
        before = int(self.state.step)
        with jax.enable_x64(True):
            state = jax.device_put(self.state)._replace(
                learning_rate=jnp.asarray(learning_rate, jnp.float64)
            )
            state, self.config, frame = fit.advance(state, self.data, self.config, steps)
            self.state, self.frame = jax.device_get((state, frame))
        self.record(int(steps), {"learning_rate": float(learning_rate)})
        done = int(self.state.step) - before
        t, scale2 = self.config.trace_length, float(self.data.scale) ** 2  # host floats
        for i in range(before, before + done):  # a frame's steps fit in the trace ring
            j = i % t
            self.w2.append(float(self.state.trace.w2[j]) * scale2)
            self.outside.append(float(self.state.trace.outside[j]))

    @property
    def view(self) -> dict:
        with jax.enable_x64(True):
            return self._view()

    def _view(self) -> dict:
        d, s = self.data, self.state
        scale, centre = float(d.scale), np.asarray(d.centre)
        # the fit's components: the last K (the others are the inert padding)
        gmm = GMM(*(a[-self.k :] for a in fit.mixture(jax.device_put(s), d)))
        cells, n = self.frame.cells, self.n_fit
        return {
            "step": int(s.step),
            "points": np.asarray(self.user_points),
            "nu": np.asarray(d.nu)[:n],
            "box": (centre - scale / 2, centre + scale / 2),
            "values": np.asarray(self.frame.values),
            "cell_vertices": np.asarray(fit.user_points(cells.vertices[:n], d)),
            "cell_count": np.asarray(cells.count)[:n],
            "gmm": _user_gmm(gmm),
            "em": _user_gmm(self.em),
            "w2": np.asarray(self.w2),
            "outside": np.asarray(self.outside),
            "em_w2": self.em_w2,
            "em_outside": self.em_outside,
            # what the fit descends, in the user's units: W2^2 + side^2 x mass off the box
            "objective": np.asarray(self.w2) + scale**2 * np.asarray(self.outside),
            "em_objective": self.em_w2 + scale**2 * self.em_outside,
            "log_likelihood": self._log_likelihood(gmm),
            "em_log_likelihood": self.em_log_likelihood,
            "status": int(s.status),
            "message": fit.describe_status(int(s.status)),
        }

    def spec(self) -> W2FitSpec:
        return W2FitSpec(self.cloud, self.k, self.res, self.seed, copy.deepcopy(self.segments))

    @classmethod
    def start(cls, spec: W2FitSpec) -> W2FitRun:
        return cls(spec.cloud, spec.k, spec.res, spec.seed)

    def results(self) -> dict:
        """Both mixtures, their criteria, and the W2^2 trace."""
        return _results(self.view)

    def figure(self, fmt: str, view: dict | None = None) -> bytes:
        return w2_fit_figure(self.view if view is None else view, fmt)


def _results(v: dict) -> dict:
    return {
        "kind": KIND,
        "step": v["step"],
        "w2_fit": {k: a.tolist() for k, a in v["gmm"].items()},
        "em_fit": {k: a.tolist() for k, a in v["em"].items()},
        "w2": v["w2"].tolist(),
        "outside": v["outside"].tolist(),
        "em_w2": v["em_w2"],
        "objective": v["objective"].tolist(),
        "em_objective": v["em_objective"],
        "log_likelihood": v["log_likelihood"],
        "em_log_likelihood": v["em_log_likelihood"],
        "status": [v["message"]] if v["message"] else [],
    }
