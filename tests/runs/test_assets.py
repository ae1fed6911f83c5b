"""The files of ``assets/`` work as a user would use them: the CSVs upload (the weight
column read), the picture loads as a target, every parameter file replays through
``gmmot replay`` to the recorded number of steps, with the setup's expected outcome."""

import json
from pathlib import Path

import numpy as np
import pytest

from gmmot_core.io import parse_points
from gmmot_core.targets import image_from_bytes
from gmmot_runs.cli import main
from gmmot_runs.run import read_spec

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def test_sample_clouds_upload():
    pts, w, _ = parse_points((ASSETS / "clouds/moons.csv").read_bytes(), "moons.csv")
    assert pts.shape == (1500, 2) and w is None
    pts, w, note = parse_points((ASSETS / "clouds/weighted_blobs.csv").read_bytes(), "b.csv")
    assert pts.shape == (1500, 2) and w is not None and 0.5 <= w.min() < w.max() <= 2.0
    assert "weight" in note  # the upload message confirms the weight column


def test_sample_picture_is_a_ring_target():
    values = image_from_bytes((ASSETS / "pictures/ring.png").read_bytes())
    assert values.shape == (96, 72)  # axis 0 = x
    assert values[48, 36] == 0 and values[48 + 24, 36] > 0  # empty centre, mass on the ring


def test_assets_are_small():
    assert sum(p.stat().st_size for p in ASSETS.rglob("*") if p.is_file()) < 1_000_000


def _replay(tmp_path, name: str) -> dict:
    """The results of replaying asset ``name``, a version-1 file. Its version-2 rewrite
    (one segment record) reads to the same spec, so it replays the same frames with the
    same values (checked byte for byte on the five assets when version 2 came)."""
    v1 = ASSETS / "params" / f"{name}.json"
    assert json.loads(v1.read_text())["version"] == 1
    _, spec = read_spec(v1.read_bytes())
    rewrite = spec.to_json()
    assert json.loads(rewrite)["version"] == 2 and spec.segments
    _, again = read_spec(rewrite)
    assert again.segments == spec.segments and again.to_json() == rewrite
    out = tmp_path / "r.json"
    assert main(["replay", str(v1), "--out", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("name", ["coupled_em_balanced", "coupled_em_unbalanced"])
def test_coupled_em_notebook_setups_replay(tmp_path, name):
    r = _replay(tmp_path, name)
    assert r["iteration"] == 10 and r["status"] == []
    c = r["coupling"]
    if name.endswith("_balanced"):  # a converged balanced coupling moves all the mass
        assert c["tau"] == 1.0 and c["converged"]
        np.testing.assert_allclose(c["total_mass"], 1.0, atol=1e-3)
    else:  # rho = 1 at eps 0.01: part of the mass is destroyed
        assert c["tau"] < 1.0 and c["total_mass"] < 1.0


def test_barycenter_notebook_setup_replays(tmp_path):
    """The notebook's inputs (OTT's draws) and barycentric weights; the run converges."""
    r = _replay(tmp_path, "barycenter_notebook")
    assert r["converged"] and r["status"] == [] and len(r["means"]) == 6
    np.testing.assert_allclose(r["lambdas"], [0.33638, 0.29498, 0.36864], atol=1e-5)


def test_tutorial_descent_replays(tmp_path):
    r = _replay(tmp_path, "descent_tutorial")
    assert r["step"] == 10 and r["w2"][-1] < r["w2"][0]


@pytest.mark.slow
def test_w2_fit_replays(tmp_path):
    r = _replay(tmp_path, "w2_fit_outlier_clump")
    assert r["step"] == 40 and r["status"] == []
    assert r["objective"][-1] < r["objective"][0]  # the fit descends
