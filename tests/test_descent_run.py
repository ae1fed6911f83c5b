"""Targets, the recorded descent run (spec, replay) and the descent screen's objects."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from gmmot_core.targets import (
    gmm_image,
    image_from_bytes,
    mixture_in_box,
    tutorial_image,
    with_floor,
)
from gmmot_runs.descent import DescentRun, DescentSpec, descent_results, replay_descent

REF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "semidiscrete"


def test_tutorial_image_is_the_reference_target():
    ref = np.load(REF / "target.npy")
    ours = tutorial_image(64)
    # same formula, normalised the same way: equal to float64 round-off
    assert np.abs(ours / ours.sum() - ref / ref.sum()).max() < 1e-17


def test_gmm_image_matches_the_closed_form_pixel_masses():
    """Axis-aligned components have exact pixel masses (products of erf differences)."""
    means = np.array([[0.4, 0.5], [0.7, 0.3]])
    sd = np.array([[0.08, 0.12], [0.05, 0.07]])
    covs = np.stack([np.diag(s**2) for s in sd])
    weights = np.array([0.6, 0.4])
    values, outside = gmm_image(means, covs, weights, (32, 40))
    edges_x, edges_y = np.linspace(0, 1, 33), np.linspace(0, 1, 41)
    cdf = np.vectorize(lambda t: 0.5 * (1 + math.erf(t / math.sqrt(2))))
    exact = sum(
        p * np.outer(np.diff(cdf((edges_x - m[0]) / s[0])), np.diff(cdf((edges_y - m[1]) / s[1])))
        for m, s, p in zip(means, sd, weights, strict=True)
    )
    # 6-point Gauss-Legendre per pixel, h / sigma <= 0.63: relative error far below 1e-8
    assert np.abs(values / (32 * 40) - exact).max() < 1e-10
    assert outside == pytest.approx(1 - exact.sum(), abs=1e-10)


FIT = (  # a coupled-EM style mixture (weights, means, covs) far from the unit square
    np.array([0.3, 0.7]),
    np.array([[5.0, -3.0], [9.0, -1.0]]),
    np.array([[[4.0, 1.0], [1.0, 2.0]], [[1.0, 0.0], [0.0, 9.0]]]),
)


def test_a_fitted_mixture_is_moved_into_the_square_by_a_similarity():
    fit = mixture_in_box(*FIT)
    means, covs = np.array(fit["means"]), np.array(fit["covs"])
    sd = np.sqrt(np.diagonal(covs, axis1=1, axis2=2))
    # every 3-sigma box inside [0.1, 0.9]^2 and touching it on the widest axis
    assert np.all(means - 3 * sd >= 0.1 - 1e-12) and np.all(means + 3 * sd <= 0.9 + 1e-12)
    assert min(np.min(means - 3 * sd), 1 - np.max(means + 3 * sd)) == pytest.approx(0.1)
    # one scale s: covariances times s^2, distances between means times s
    s2 = covs[0, 0, 0] / FIT[2][0, 0, 0]
    assert np.allclose(covs, s2 * FIT[2], rtol=1e-12, atol=0)
    ratio = np.linalg.norm(means[1] - means[0]) / np.linalg.norm(FIT[1][1] - FIT[1][0])
    assert ratio**2 == pytest.approx(s2)
    assert fit["weights"] == pytest.approx([0.3, 0.7])
    with pytest.raises(ValueError, match="no extent"):
        mixture_in_box([1.0], [[1.0, 1.0]], [[[0.0, 0.0], [0.0, 0.0]]])
    with pytest.raises(ValueError, match="finite"):
        mixture_in_box([1.0], [[np.nan, 1.0]], [np.eye(2)])


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array.astype(np.uint8), "L").save(buf, format="PNG")
    return buf.getvalue()


def test_uploaded_image_orientation_and_darkness():
    img = np.full((20, 30), 255)  # 20 rows, 30 columns, white
    img[0, 0] = 0  # black pixel at the top left
    values = image_from_bytes(_png(img))
    assert values.shape == (30, 20)  # axis 0 = x (columns)
    assert np.unravel_index(values.argmax(), values.shape) == (0, 19)  # x = 0, y = top
    assert image_from_bytes(_png(img), invert=True).min() == 0.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n garbage", "not a readable image"),
        (b"x,y\n1,2\n", "not a readable image"),
        (_png(np.full((4, 4), 255)), "no mass"),
    ],
)
def test_bad_images_are_refused_with_a_message(data, message):
    with pytest.raises(ValueError, match=message):
        image_from_bytes(data)


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


def test_spec_replays_the_same_numbers(run, tmp_path):
    text = run.spec().to_json()
    again = replay_descent(DescentSpec.from_dict(json.loads(text)))
    assert np.array_equal(again.view["positions"], run.view["positions"])
    assert descent_results(again)["w2"] == descent_results(run)["w2"]
    # and through the command line
    from gmmot_runs.cli import main

    (tmp_path / "p.json").write_text(text)
    assert main(["replay", str(tmp_path / "p.json"), "--out", str(tmp_path / "r.json")]) == 0
    out = json.loads((tmp_path / "r.json").read_text())
    assert out["positions"] == descent_results(run)["positions"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n", "many", "field 'n'"),
        ("n", 1, "field 'n'"),
        ("init", "grid", "field 'init'"),
        ("version", 99, "field 'version'"),
        ("segments", [[1, "fast", True]], "segments\\[0\\]"),
        ("colour", "red", "unknown field 'colour'"),
    ],
)
def test_bad_spec_fields_are_named(run, field, value, message):
    obj = json.loads(run.spec().to_json()) | {field: value}
    with pytest.raises(ValueError, match=message):
        DescentSpec.from_dict(obj)


def test_screen_steps_and_keeps_its_run_on_a_bad_upload():
    from app.screens.descent import DescentScreen

    screen = DescentScreen()
    screen.w_n.value = 40
    screen._tick()
    screen._tick()
    assert screen.run.view["step"] == 2
    assert sum(np.isnan(xs).sum() + 1 for xs in screen.src["cells"].data["xs"]) == 40
    good = screen.run
    screen._on_upload(type("E", (), {"new": b"not an image"})())
    assert screen.run is good and "Image rejected" in screen.message
    screen.w_look.value = 0  # look back at the start
    assert "looking back" in screen.counter.object
    # the coupled-EM fit as the target: the replayable gaussian-mixture preset
    screen = DescentScreen(pair_source=lambda: (FIT, FIT[:1] + FIT[1:]))
    screen.w_n.value = 40
    screen.w_target.value = "coupled-EM fit, cloud 1"
    assert screen.run.target == {"preset": "gaussian mixture", "res": 128} | mixture_in_box(*FIT)
    screen._tick()
    assert screen.run.view["step"] == 1 and not screen.message


def test_uploaded_picture_on_white_starts_from_random_diracs():
    """A dark ring on a white (massless) background with random Diracs, most of them over
    the white: the floor (1e-9 of the mean pixel) lets the cold start's continuation
    reach every cell, so the weights converge (max |m - 1/N| <= 1e-8) and Lloyd steps
    run. Without it the first solve stops at once (EMPTY_CELL)."""
    from PIL import Image

    from app.screens.descent import DescentScreen

    yy, xx = np.mgrid[0:48, 0:64]
    ring = np.abs(np.hypot(xx - 32, yy - 24) - 15) < 3
    buf = io.BytesIO()
    Image.fromarray(np.where(ring, 20, 255).astype(np.uint8), "L").save(buf, format="PNG")
    raw = image_from_bytes(buf.getvalue())
    assert np.mean(raw == 0) > 0.7  # mostly massless
    stuck = DescentRun({"values": None}, 60, "random", 0, raw)
    assert "no mass" in " ".join(stuck.view["messages"])

    screen = DescentScreen()
    screen.w_n.value = 60
    screen.w_upload.filename = "ring.png"
    screen._on_upload(type("E", (), {"new": buf.getvalue()})())
    assert screen.alert.object.startswith("target: ring.png, 64 x 48 pixels")
    assert float(screen.run.view["error"][-1]) * (1 / 60) <= 1e-8
    for _ in range(3):
        screen._tick()
    assert screen.run.view["step"] == 3 and not screen.run.stopped and not screen.message
    np.testing.assert_allclose(screen.run.values, with_floor(raw), rtol=1e-15)
    # the picture keeps its shape: 64 x 48 pixels on [0, 1] x [0, 0.75]
    np.testing.assert_allclose(screen.run.density.hi, [1.0, 0.75])
    y = screen.run.view["positions"]
    assert y[:, 1].max() <= 0.75 and y[:, 1].max() > 0.6
    assert screen.src["image"].data["dh"] == [0.75]


def test_cells_are_drawn_as_one_nan_separated_patch_per_colour():
    """Cell i is drawn in its Dirac's colour i % 20; the cells of a colour are the
    NaN-separated parts of one patch, each with exactly its vertices, empty and
    degenerate (< 3 vertices) cells left out."""
    from bokeh.palettes import Category20_20

    from app.descent_plots import cells_data
    from gmmot_core.semidiscrete.cells import Cells

    rng = np.random.default_rng(5)
    verts, count = rng.random((45, 6, 2)), rng.integers(0, 7, 45)
    data = cells_data(Cells(verts, None, count, 0))
    expected = {c: [i for i in range(c, 45, 20) if count[i] >= 3] for c in range(20)}
    assert data["color"] == [Category20_20[c] for c in range(20) if expected[c]]
    for xs, ys, colour in zip(data["xs"], data["ys"], data["color"], strict=True):
        rows = expected[Category20_20.index(colour)]
        cut = np.nonzero(np.isnan(xs))[0]
        assert np.array_equal(cut, np.nonzero(np.isnan(ys))[0]) and len(cut) == len(rows) - 1
        for part_x, part_y, i in zip(np.split(xs, cut), np.split(ys, cut), rows, strict=True):
            part = np.stack([part_x, part_y], 1)
            part = part[~np.isnan(part[:, 0])]
            assert np.array_equal(part, verts[i, : count[i]])
