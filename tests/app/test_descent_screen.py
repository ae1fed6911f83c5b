"""The descent screen's objects: frames, a bad upload keeps the run, an uploaded picture
on white, the coupled-EM fit as a target, the cells' patches."""

from __future__ import annotations

import io

import numpy as np
from helpers import FIT

from gmmot_core.targets import image_from_bytes, mixture_in_box, with_floor
from gmmot_runs.descent import DescentRun


def test_screen_steps_and_keeps_its_run_on_a_bad_upload():
    from gmmot.screens.descent import DescentScreen

    screen = DescentScreen()
    screen.w_n.value = 40
    screen.param.trigger("step")
    screen.param.trigger("step")
    assert screen.run.view["step"] == 2
    assert sum(np.isnan(xs).sum() + 1 for xs in screen.src["cells"].data["xs"]) == 40
    good = screen.run
    screen.upload(b"not an image")
    assert screen.run is good and "Image rejected" in screen.message
    screen.w_look.value = 0  # look back at the start
    assert "looking back" in screen.counter.object
    # the coupled-EM fit as the target: the replayable gaussian-mixture preset
    screen = DescentScreen(pair_source=lambda: (FIT, FIT[:1] + FIT[1:]))
    screen.w_n.value = 40
    screen.w_target.value = "coupled-EM fit, cloud 1"
    assert screen.run.target == {"preset": "gaussian mixture", "res": 128} | mixture_in_box(*FIT)
    screen.param.trigger("step")
    assert screen.run.view["step"] == 1 and not screen.message


def test_uploaded_picture_on_white_starts_from_random_diracs():
    """A dark ring on a white (massless) background with random Diracs, most of them over
    the white: the floor (1e-9 of the mean pixel) lets the cold start's continuation
    reach every cell, so the weights converge (max |m - 1/N| <= 1e-8) and Lloyd steps
    run. Without it the first solve stops at once (EMPTY_CELL)."""
    from PIL import Image

    from gmmot.screens.descent import DescentScreen

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
    screen.upload(buf.getvalue(), "ring.png")
    assert screen.alert.object.startswith("target: ring.png, 64 x 48 pixels")
    assert float(screen.run.view["error"][-1]) * (1 / 60) <= 1e-8
    for _ in range(3):
        screen.param.trigger("step")
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

    from gmmot.plots.cells import cells_data
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


def test_looking_back_marks_the_traces_and_the_exports_follow():
    """The looked-back step is marked on both traces, and the figure and positions exports
    show that step (the PNG showed the latest step while the screen showed step 0)."""
    from gmmot.screens.descent import DescentScreen

    screen = DescentScreen()
    for _ in range(3):
        screen.param.trigger("step")
    assert screen.run.view["step"] == 3
    screen.w_look.value = 0
    span = screen.w2_fig.select_one({"name": "look"})
    assert span.visible and span.location == 0
    shown = screen.shown_view()
    assert shown["step"] == 0
    np.testing.assert_array_equal(shown["positions"], screen.run.history[0][1])
    # the positions file says which step it holds (it held step 0 with no step column,
    # beside a results file of the latest step)
    csv = screen._positions_file().getvalue().splitlines()
    assert csv[0] == "x,y,step"
    x, y, step = csv[1].split(",")
    np.testing.assert_allclose([float(x), float(y)], screen.run.history[0][1][0], rtol=1e-15)
    assert step == "0" and all(row.endswith(",0") for row in csv[1:])
    figure = next(cb for cb, name, _ in screen.run_files() if name.endswith("png"))
    assert figure().getvalue()[:4] == b"\x89PNG"
    screen.w_look.value = len(screen.run.history) - 1  # back to the latest
    assert not span.visible and screen.shown_view()["step"] == 3
