"""The recorded descent run: Lloyd / gradient frames, the spec and its bit-identical replay."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from gmmot_runs.descent import DescentRun, DescentSpec


@pytest.fixture(scope="module")
def run():
    r = DescentRun({"preset": "tutorial two peaks", "res": 64}, n=60, seed=3)
    for lr, lloyd in ((100.0, True), (10.0, False), (100.0, True)):
        r.play(2, lr, lloyd)
    return r


def test_lloyd_lowers_w2_and_keeps_masses_exact(run):
    w2 = run.view["w2"]
    assert len(w2) == 7 and run.view["step"] == 6
    assert w2[-1] < 0.2 * w2[0]  # Lloyd on the two peaks: W2^2 falls fast from uniform
    err = np.asarray(run.view["error"])
    # one entry per step, each what that step's solve left: max |m - nu| <= 1e-8 = 6e-7
    # relative; steps solved separately do not leave the same error twice
    assert len(err) == len(w2) and np.all(err < 1e-6)
    assert len(set(err[1:].tolist())) == len(err) - 1
    assert not run.view["messages"]


def test_steps_per_frame_does_not_recompile_or_change_the_numbers():
    """The steps-per-frame slider is traced: frames of 1..FRAME_STEPS steps share one
    executable (a recompile costs seconds and ~10,000 memory maps), and 3 frames of one
    step land on the very same numbers as one frame of three."""
    from gmmot_core.semidiscrete.descent import _run

    a = DescentRun({"preset": "tutorial two peaks", "res": 64}, n=60, seed=3)
    b = DescentRun({"preset": "tutorial two peaks", "res": 64}, n=60, seed=3)
    a.play(1, 100.0, True)
    compiled = _run._cache_size()
    a.play(2, 100.0, True)
    b.play(3, 100.0, True)
    assert _run._cache_size() == compiled
    assert a.view["step"] == b.view["step"] == 3
    assert np.array_equal(a.view["positions"], b.view["positions"])
    assert a.w2 == b.w2 and len(a.w2) == 4


def test_one_program_per_bucket(caplog):
    """Every N of a bucket and every image of a grid use one executable, from the cold
    start through the frames and the history's cells: a new N or image size in a bucket
    lowers no new program (the cold solve is a frame of one lr = 0 step; JAX logs every
    lowering under ``jax_log_compiles``, persistent-cache hits included)."""
    import jax

    rng = np.random.default_rng(0)
    first = DescentRun({"values": (0.5 + rng.random((40, 50))).tolist()}, n=70)
    first.play(2, 50.0, False)
    first.cells_at(0)
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        for n, shape in ((65, (33, 40)), (96, (64, 64))):  # bucket 96, grid 64 x 64
            run = DescentRun({"values": (0.5 + rng.random(shape)).tolist()}, n=n)
            run.play(2, 50.0, False)
            step, y, cells = run.cells_at(0)
            assert step == 0 and len(y) == n and cells.count.shape == (n,)
            assert run.view["positions"].shape == (n, 2) and not run.stopped
    lowered = [r.getMessage() for r in caplog.records if "MLIR" in r.getMessage()]
    assert not [m for m in lowered if "_run" in m or "newton" in m or "_cells" in m], lowered


def test_spec_replays_the_same_numbers(run, tmp_path):
    text = run.spec().to_json()
    again = DescentRun.from_spec(DescentSpec.from_dict(json.loads(text)))
    assert np.array_equal(again.view["positions"], run.view["positions"])
    assert again.results()["w2"] == run.results()["w2"]
    # and through the command line
    from gmmot_runs.cli import main

    (tmp_path / "p.json").write_text(text)
    assert main(["replay", str(tmp_path / "p.json"), "--out", str(tmp_path / "r.json")]) == 0
    out = json.loads((tmp_path / "r.json").read_text())
    assert out["positions"] == run.results()["positions"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n", "many", "field 'n'"),
        ("n", 1, "field 'n'"),
        ("init", "grid", "field 'init'"),
        ("version", 99, "field 'version'"),
        ("segments", [{"frames": 1, "steps": 1}], "missing field 'segments\\[0\\].values'"),
        ("colour", "red", "unknown field 'colour'"),
    ],
)
def test_bad_spec_fields_are_named(run, field, value, message):
    obj = json.loads(run.spec().to_json()) | {field: value}
    with pytest.raises(ValueError, match=message):
        DescentSpec.from_dict(obj)
