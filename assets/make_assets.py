"""Write the sample files of ``assets/`` (deterministic; rerun after a spec version bump).

``python assets/make_assets.py`` writes:
- ``clouds/moons.csv`` (x, y) and ``clouds/weighted_blobs.csv`` (x, y, weight): two
  clouds to upload on the coupled-EM tab, one per side;
- ``pictures/ring.png``: a dark ring on white, 96 x 72 pixels, for the descent tab;
- ``params/*.json``: one parameter file per seed notebook's setup, each recorded by
  the run it replays (``gmmot replay assets/params/<name>.json --out r.json``).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from gmmot_core import synthetic
from gmmot_runs.barycenter import BarycenterRun, BarycenterSpec
from gmmot_runs.coupled_em import CoupledEMRun, HostKnobs, Segment, Structure
from gmmot_runs.descent import DescentRun
from gmmot_runs.w2_fit import W2FitRun

HERE = Path(__file__).resolve().parent


def _csv(path: Path, rows: np.ndarray, header: str) -> None:
    body = "\n".join(",".join(f"{v:.6g}" for v in r) for r in rows)
    path.write_text(f"{header}\n{body}\n")


def clouds() -> None:
    out = HERE / "clouds"
    out.mkdir(exist_ok=True)
    _csv(out / "moons.csv", synthetic.moons(1500, 4), "x,y")
    rng = np.random.default_rng(7)
    centres = np.array([[0.0, 0.0], [2.5, 0.5], [1.0, 2.5]])
    k = rng.choice(3, 1500, p=[0.5, 0.3, 0.2])
    pts = centres[k] + 0.35 * rng.standard_normal((1500, 2))
    weights = rng.uniform(0.5, 2.0, 1500).round(3)
    _csv(out / "weighted_blobs.csv", np.column_stack([pts, weights]), "x,y,weight")


def picture() -> None:
    out = HERE / "pictures"
    out.mkdir(exist_ok=True)
    yy, xx = np.mgrid[0:72, 0:96]
    ring = np.abs(np.hypot(xx - 48, yy - 36) - 24) < 5
    buf = io.BytesIO()
    Image.fromarray(np.where(ring, 30, 255).astype(np.uint8), "L").save(buf, format="PNG")
    (out / "ring.png").write_bytes(buf.getvalue())


def params() -> None:
    out = HERE / "params"
    out.mkdir(exist_ok=True)
    # "Fitting Coupled GMMs": the demo pair, K = 3, 10 EM iterations of 20 Adam steps
    for name, knobs in (
        ("coupled_em_balanced", HostKnobs(epsilon=0.01, balanced=True, weight_transport=0.01)),
        ("coupled_em_unbalanced", HostKnobs(epsilon=0.01, rho=1.0, weight_transport=0.1)),
    ):
        data = {"preset": "demo pair", "n": 2000, "seed": 0}
        clouds = synthetic.demo_pair(2000, 0)
        run = CoupledEMRun(*clouds, knobs=knobs, structure=Structure(k=3), data=data)
        seg = Segment(10, 1, 20, knobs.epsilon, knobs.tau, knobs.weight_transport, 1e-3)
        run.play(seg)
        (out / f"{name}.json").write_text(run.spec().to_json())
    # "GMM barycenters": the notebook's three mixtures (2, 3, 5 components, OTT's draws) and
    # barycentric weights, bar_size 6, epsilon 0.1, run to OTT's stopping rule
    mixtures, lambdas = synthetic.random_mixtures()
    given = [
        {k: np.asarray(v, np.float64).tolist() for k, v in g._asdict().items()} for g in mixtures
    ]
    bary = BarycenterRun(BarycenterSpec(n_inputs=3, n_components=5, bar_size=6, mixtures=given))
    bary.set_knobs(np.asarray(lambdas, np.float64), 0.1)
    bary.steps_per_frame = 10
    for _ in range(5):
        bary.step()
    (out / "barycenter_notebook.json").write_text(bary.spec().to_json())
    # sdot's tutorial: 200 Diracs on the two peaks, Lloyd steps
    descent = DescentRun({"preset": "tutorial two peaks", "res": 64}, n=200, seed=0)
    descent.play(10, 100.0, True)
    (out / "descent_tutorial.json").write_text(descent.spec().to_json())
    # the tutorial's last section: a GMM fitted to points by W2 (outlier clump)
    fit = W2FitRun({"preset": "outlier clump", "n": 600, "seed": 3}, k=2, res=48, seed=3)
    fit.play(40, 0.02)
    (out / "w2_fit_outlier_clump.json").write_text(fit.spec().to_json())


if __name__ == "__main__":
    clouds()
    picture()
    params()
    sizes = {p.relative_to(HERE).as_posix(): p.stat().st_size for p in HERE.rglob("*.*")}
    sys.stdout.write(f"{json.dumps(sizes, indent=1)}\n{sum(sizes.values())} bytes\n")
