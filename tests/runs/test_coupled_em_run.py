"""Recorded runs: a parameter file replays the same numbers (objects and the CLI), and a
malformed file gets an error naming its field."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from gmmot_core import synthetic
from gmmot_runs.coupled_em import (
    CoupledEMKnobs,
    CoupledEMRun,
    RunSpec,
    SpecError,
    Structure,
    preset_clouds,
)
from gmmot_runs.spec import kind_of


def _played_run(data: dict, clouds, weights=(None, None)) -> CoupledEMRun:
    """A run driven like a user would: frames, knob moves and structure changes between."""
    run = CoupledEMRun(
        *clouds, *weights, CoupledEMKnobs(balanced=False), Structure(k=3), seed=1, data=data
    )
    for _ in range(3):
        run.step()
    run.set(epsilon=3e-3, weight_transport=1.0)
    run.step()
    run.set(balanced=True)
    run.set_structure(em_per_frame=2, m_steps=7)
    run.step()
    run.step()
    run.set(balanced=False, rho=0.1, learning_rate=1e-2)
    run.step()
    return run


def _roundtrip(run: CoupledEMRun) -> dict:
    spec = RunSpec.from_json(run.spec().to_json())
    return CoupledEMRun.from_spec(spec).results()


def test_preset_run_replays_bit_for_bit():
    data = {"preset": "demo pair", "n": 500, "seed": 3}
    run = _played_run(data, preset_clouds("demo pair", n=500, seed=3))
    assert [s.frames for s in run.segments] == [3, 1, 2, 1]
    assert run.spec().iterations == 3 + 1 + 4 + 2 == int(run.view["iteration"])
    # exact equality: the same jitted frames with the same inputs on the same machine
    assert _roundtrip(run) == run.results()


def test_inline_weighted_run_replays_bit_for_bit(rng):
    p0 = rng.normal(size=(300, 2)).astype(np.float32)
    p1 = (rng.normal(size=(200, 2)) * 0.5 + 2).astype(np.float32)
    w1 = rng.uniform(0.1, 2.0, 200).astype(np.float32)
    run = _played_run({"inline": True}, (p0, p1), (None, w1))
    spec = json.loads(run.spec().to_json())
    assert np.array_equal(np.asarray(spec["data"]["points0"], np.float32), p0)
    assert np.array_equal(np.asarray(spec["data"]["weights1"], np.float32), w1)
    assert _roundtrip(run) == run.results()


def test_random_pair_preset_is_deterministic_and_moves_masses():
    a = synthetic.random_pair(400, seed=5, shift=2.0, rotation=90.0, reweight=1.0)
    b = preset_clouds("random pair", n=400, seed=5, shift=2.0, rotation=90.0, reweight=1.0)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    c = synthetic.random_pair(400, seed=5, shift=2.0, rotation=0.0, reweight=0.0)
    # with no rotation and no reweighting, cloud 1 is cloud 0's law shifted by (2, 0):
    # sample means differ by the shift up to sampling error (3 sigma of a 400-point mean)
    d = c[1].mean(0) - c[0].mean(0) - np.array([2.0, 0.0])
    sd = np.sqrt(c[0].var(0) / 400 + c[1].var(0) / 400)
    assert np.all(np.abs(d) < 4 * sd)


@pytest.fixture(scope="module")
def spec_dict() -> dict:
    run = CoupledEMRun(
        *synthetic.demo_pair(200, 0), data={"preset": "demo pair", "n": 200, "seed": 0}
    )
    run.step()
    return json.loads(run.spec().to_json())


def _edit(d: dict, path: str, value) -> dict:
    out = json.loads(json.dumps(d))
    *parents, last = path.split(".")
    node = out
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return out


_DELETE = object()

BAD = [
    ("version", 99, "field 'version': 99 is newer"),
    ("format", "something else", "field 'format'"),
    ("surprise", 1, "unknown field 'surprise'"),
    ("structure.k", "three", "field 'structure.k': expected an integer"),
    ("structure.k", 0, "field 'structure.k': 0 is outside"),
    ("structure.seed", _DELETE, "missing field 'structure.seed'"),
    ("knobs.epsilon", "1e-2", "field 'knobs.epsilon': expected a number"),
    ("knobs.balanced", 1, "field 'knobs.balanced': expected true or false"),
    ("data.preset", "spirals", "field 'data.preset': unknown preset"),
    ("data.n", 1.5, "field 'data.n': expected an integer"),
    ("initial.gmm0.means", [[0, 0]], "field 'initial.gmm0.means': expected shape (3, 2)"),
    ("initial.gmm1.weights", [0.5, 0.5, -0.1], "field 'initial.gmm1.weights': weights must"),
    (
        "initial.gmm0.covs",
        [[[1, 2], [2, 1]]] * 3,
        "field 'initial.gmm0.covs': covariances must be symmetric positive definite",
    ),
    ("segments.0.frames", -1, "field 'segments[0].frames': -1 is outside"),
    ("segments.0.values.tau", None, "field 'segments[0].values.tau': expected a finite number"),
    ("segments.0.values.rho", 1.0, "unknown field 'segments[0].values.rho'"),
    ("iterations", 5, "field 'iterations': 5 does not match"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD, ids=[b[0] for b in BAD])
def test_malformed_spec_names_the_field(spec_dict, path, value, message):
    with pytest.raises(SpecError) as err:
        RunSpec.from_dict(_edit(spec_dict, path, value))
    assert message in str(err.value)


def test_files_of_the_older_envelope_still_read(spec_dict):
    """A file is written in the one envelope (kind, version, gmmot) at version 2; one
    written before it (format 'gmmot.coupled_em.run', library_version, version 1 with
    flat segments), such as assets/params, reads to the same spec."""
    assert spec_dict["kind"] == "coupled_em" and isinstance(spec_dict["gmmot"], str)
    assert "format" not in spec_dict and "library_version" not in spec_dict
    body = {k: v for k, v in spec_dict.items() if k not in ("kind", "gmmot")}
    flat = [
        {"frames": s["frames"], "em_per_frame": s["steps"], **s["values"]} for s in body["segments"]
    ]
    old = {"format": "gmmot.coupled_em.run", "library_version": "0.1.0", **body}
    old |= {"version": 1, "segments": flat}
    assert kind_of(old) == "coupled_em"
    again = RunSpec.from_dict(old)
    assert json.loads(again.to_json()) == spec_dict
    with pytest.raises(SpecError, match="field 'version': 3 is newer"):
        RunSpec.from_dict(old | {"version": 3})
    with pytest.raises(SpecError, match="unknown field 'segments\\[0\\]\\.em_per_frame'"):
        RunSpec.from_dict(old | {"version": 2})  # flat segments are version 1's


def test_not_json_and_not_an_object():
    with pytest.raises(SpecError, match="not a JSON parameter file"):
        RunSpec.from_json(b"\x89PNG\r\n")
    with pytest.raises(SpecError, match="expected a JSON object"):
        RunSpec.from_json("[1, 2]")


def test_nan_in_initial_mixture_is_refused(spec_dict):
    text = json.dumps(_edit(spec_dict, "initial.gmm0.means", [[float("nan"), 0.0]] * 3))
    with pytest.raises(SpecError, match=r"'initial\.gmm0\.means': contains NaN"):
        RunSpec.from_json(text)


def test_cli_replays_and_reports_bad_files(tmp_path, spec_dict):
    run = CoupledEMRun.from_spec(RunSpec.from_dict(spec_dict))
    params = tmp_path / "params.json"
    params.write_text(json.dumps(spec_dict))
    out, fig = tmp_path / "results.json", tmp_path / "fig.svg"
    cmd = [sys.executable, "-m", "gmmot_runs", "replay", str(params), "--out", str(out)]
    done = subprocess.run([*cmd, "--figure", str(fig)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text()) == run.results()
    assert fig.read_text().lstrip().startswith("<?xml") and "<svg" in fig.read_text()

    params.write_text(json.dumps(_edit(spec_dict, "knobs.epsilon", "big")))
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 2
    assert "field 'knobs.epsilon': expected a number" in done.stderr
    assert "Traceback" not in done.stderr

    missing = subprocess.run(
        [*cmd[:4], str(tmp_path / "nope.json"), "--out", str(out)], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_the_view_and_the_frames_share_one_program(caplog):
    """A reset's view is a frame of zero EM iterations (traced): after one run's reset
    and frame, a second run of another K lowers one program, not one for its view and
    one for its frames (JAX logs every lowering under ``jax_log_compiles``)."""
    import logging

    import jax

    clouds = preset_clouds("demo pair", n=300, seed=0)
    first = CoupledEMRun(*clouds, structure=Structure(k=2))
    before = first.view
    first.step()
    assert int(before["iteration"]) == 0 and int(first.view["iteration"]) == 1
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        CoupledEMRun(*clouds, structure=Structure(k=4)).step()
    lowered = [r.getMessage() for r in caplog.records if "MLIR" in r.getMessage()]
    assert len([m for m in lowered if "_frame" in m]) == 1, lowered


def test_the_figure_shows_the_growth_factors_and_one_colour_per_cloud():
    """The exported figure, made for a paper, had no growth factors and its reweighting
    legend one colour for both clouds. Now each main path's factor is written on its link
    (as on the screen: the same rule and numbers) and each cloud's marginals have their
    own legend entry. Texts read from the SVG (fonts as text, not paths)."""
    import matplotlib

    from gmmot_runs.figures import LINK_LABEL_SHARE, coupled_em_figure

    clouds = preset_clouds("demo pair", n=500, seed=3)
    run = CoupledEMRun(
        *clouds, knobs=CoupledEMKnobs(balanced=False, rho=0.1), structure=Structure(k=3)
    )
    run.step()
    res = run.results()
    raw, factor = (np.asarray(res["coupling"][k]) for k in ("raw", "path_factor"))
    main = raw >= LINK_LABEL_SHARE * raw.sum()
    assert np.any(np.abs(factor[main] - 1.0) > 0.01)  # unbalanced: the factors say something
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        svg = coupled_em_figure(res, *clouds, fmt="svg").decode()
    for f in factor[main]:
        assert f"×{f:.2f}" in svg
    assert "coupling marginal, cloud 0" in svg and "coupling marginal, cloud 1" in svg
