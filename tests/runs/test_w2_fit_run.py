"""The recorded W2 fit (gmmot_runs.w2_fit): its parameter file (field-named refusals),
bit-identical replay, the results and figure files, and `gmmot replay` on it."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from gmmot_runs.cli import main as cli_main
from gmmot_runs.figures import w2_fit_figure
from gmmot_runs.spec import SpecError
from gmmot_runs.w2_fit import W2FitRun, W2FitSpec, cloud_points

CLOUD = {"preset": "outlier clump", "n": 600, "seed": 3}


@pytest.fixture(scope="module")
def run():
    r = W2FitRun(CLOUD, k=2, res=48, seed=0)
    r.play(5, 0.02)
    r.play(3, 0.05)
    return r


@pytest.mark.slow
def test_replay_is_bit_identical_and_the_files_are_complete(run, tmp_path):
    spec = W2FitSpec.from_json(run.spec().to_json())
    assert [(s.frames, s.steps, s.values) for s in spec.segments] == [
        (1, 5, {"learning_rate": 0.02}),
        (1, 3, {"learning_rate": 0.05}),
    ]
    again = W2FitRun.from_spec(spec)
    a, b = run.results(), again.results()
    assert a == b  # same frames, same chunks: the same numbers bit for bit
    assert a["step"] == 8 and len(a["w2"]) == 8 and all(np.isfinite(a["w2"]))
    assert set(a["w2_fit"]) == {"weights", "means", "covs"}
    assert np.isfinite(a["em_w2"]) and a["em_log_likelihood"] > a["log_likelihood"] - 1.0
    png = w2_fit_figure(run.view, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    # the same through the command line
    params = tmp_path / "p.json"
    params.write_text(run.spec().to_json())
    out = tmp_path / "r.json"
    assert cli_main(["replay", str(params), "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == a


@pytest.mark.slow
def test_view_is_in_the_users_coordinates(run):
    v = run.view
    p = cloud_points(CLOUD["preset"], CLOUD["n"], CLOUD["seed"])
    np.testing.assert_allclose(np.sort(v["points"], 0), np.sort(p, 0), atol=1e-12)
    lo, hi = v["box"]
    assert np.all(p.min(0) > lo) and np.all(p.max(0) < hi)
    # every cell lies in the box and the cells of all points are there
    used = v["cell_count"] >= 3
    assert used.all()
    verts = v["cell_vertices"][used]
    assert verts.min() >= min(lo) - 1e-9 and verts.max() <= max(hi) + 1e-9


def _seg(steps, learning_rate) -> dict:
    return {"frames": 1, "steps": steps, "values": {"learning_rate": learning_rate}}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"k": 12}, "'k'"),
        ({"k": "2"}, "'k'"),
        ({"res": 50}, "'res'"),
        ({"kind": "descent"}, "'kind'"),
        ({"version": 3}, "'version'"),
        ({"cloud": {"preset": "spiral", "n": 100}}, "'cloud.preset'"),
        ({"cloud": {"preset": "moons", "n": 10**6}}, "'cloud.n'"),
        ({"cloud": {"points": [[0, 0], [1, float("nan")]]}}, "'cloud.points'"),
        ({"cloud": {"points": [[0, 0], [1, 1]], "weights": [1.0]}}, "'cloud.weights'"),
        ({"segments": [_seg(5, 0.02), _seg(0, 0.02)]}, "'segments[1].steps'"),
        ({"segments": [_seg(5, 50.0)]}, "'segments[0].values.learning_rate'"),
        ({"segments": [_seg(51, 0.02)]}, "'segments[0].steps': 51 is outside [1, 50]"),
    ],
)
def test_a_bad_field_is_refused_by_name(change, field):
    good = json.loads(W2FitSpec(CLOUD).to_json())
    with pytest.raises(SpecError, match=re.escape(field)):
        W2FitSpec.from_json(json.dumps(good | change))


def test_cli_names_the_field(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(json.loads(W2FitSpec(CLOUD).to_json()) | {"k": 0}))
    assert cli_main(["replay", str(bad), "--out", str(tmp_path / "r.json")]) == 2
    assert "field 'k'" in capsys.readouterr().err


def test_data_that_cannot_be_fit_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="fewer than K"):
        W2FitRun({"points": [[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]}, k=3)
    with pytest.raises(ValueError, match="at most 5000"):
        W2FitRun({"points": np.random.default_rng(0).normal(size=(5001, 2)).tolist()})


@pytest.mark.slow
def test_a_new_k_reuses_the_compiled_fit(run):
    """Every K is padded to K_MAX inert components: a fit at K = 3 on the same cloud and
    raster runs the program the K = 2 fit compiled (a K change compiled it again: 154 s
    on 2 cores), and shows its 3 components."""
    from gmmot_core import gmm_w2_fit as fit

    before = fit._run_frame._cache_size()
    r = W2FitRun(CLOUD, k=3, res=48, seed=0)
    r.play(5, 0.02)
    assert fit._run_frame._cache_size() == before
    v = r.view
    assert v["status"] == 0 and v["step"] == 5
    assert len(v["gmm"]["weights"]) == 3 and len(v["em"]["weights"]) == 3
    np.testing.assert_allclose(v["gmm"]["weights"].sum(), 1.0, rtol=1e-12)
    assert np.all(v["gmm"]["weights"] > 0)


@pytest.mark.slow
def test_the_trace_keeps_every_step_past_the_ring_length():
    """550 steps through a 512-step trace ring: every step's W2^2 is its own (with the
    ring clamped at its last slot, the last 39 steps all read the last value)."""
    r = W2FitRun(CLOUD, k=2, res=48, seed=0)
    for _ in range(11):
        r.play(50, 0.02)
    assert len(r.w2) == 550
    tail = np.asarray(r.w2[-40:])
    assert len(np.unique(tail)) == len(tail)
    scale2 = float(r.data.scale) ** 2
    assert r.w2[-1] == float(r.state.trace.w2[549 % 512]) * scale2


@pytest.mark.slow
def test_the_screens_default_plays_on_at_k_3():
    """The screen's defaults (outlier clump, N = 600, seed 3, 48^2, lr 0.02) at K = 3,
    played 100 steps as Play does. Was: the clump's component shrank to a fiftieth of a
    pixel (covariance eigenvalues 0.0046 and 0.008 against a pixel of 0.23) and the fit
    halted at step 69 ("Newton did not reach the mass tolerance"); K = 4, 5, 7 and 8
    halted at steps 56-87. The covariances are now floored at half a pixel, squared."""
    from gmmot_core import gmm_w2_fit as fit

    r = W2FitRun(CLOUD, k=3, res=48, seed=3)
    for _ in range(20):
        r.play(5, 0.02)
    v = r.view
    assert not r.stopped and not int(r.state.status) & fit.HALTED, fit.describe_status(v["status"])
    assert v["step"] >= 95  # a step whose warm solve failed is redone cold, uncounted
    floor = r.config.min_variance * float(r.data.scale) ** 2  # user units
    eig = np.linalg.eigvalsh(np.asarray(v["gmm"]["covs"]))
    assert eig.min() >= floor * (1 - 1e-9)
    assert np.all(np.isfinite(r.w2[-95:]))
