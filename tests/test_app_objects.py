"""The app's Python objects driven directly (no browser): sessions are independent,
knobs act without recompiling, bad uploads keep the last good data."""

import numpy as np
import pytest

from app.screens.coupled_em import CoupledEMScreen
from gmmot_core.runs import _frame


@pytest.fixture(scope="module")
def screen():
    return CoupledEMScreen()


def test_initial_view_has_everything(screen):
    view = screen.runner.view
    assert view["report"].coupling.shape == (3, 3)
    assert np.isfinite(float(view["report"].total_mass))
    assert len(screen.trace_src.data["it"]) == int(view["iteration"])
    assert len(screen.pair[1]["links"].data["x0"]) >= 3


def test_frames_advance_and_knobs_do_not_recompile(screen):
    screen._tick()
    before = _frame._cache_size()
    it0 = int(screen.runner.view["iteration"])
    for eps in list(screen.w_eps.options.values())[::7]:
        screen.w_eps.value = eps
        screen._tick()
    screen.w_bal.value = True
    screen._tick()
    screen.w_wt.value = 0.0
    screen._tick()
    assert int(screen.runner.view["iteration"]) > it0 + 3
    assert _frame._cache_size() == before  # sliders are traced leaves
    assert screen.runner.knobs.tau == 1.0


def test_bad_upload_keeps_last_good_data(screen):
    good = screen.runner.points0
    event = type("E", (), {"new": b"x,y\n1,2\nfoo,3\n"})()
    screen.upload0.filename = "bad.csv"
    screen._on_upload(0, event)
    assert screen.runner.points0 is good
    assert "rejected" in screen.message and "non-numeric" in screen.message


def test_good_upload_replaces_cloud(screen):
    rows = "\n".join(
        f"{x:.4f},{y:.4f},1.0" for x, y in np.random.default_rng(0).normal(size=(300, 2))
    )
    event = type("E", (), {"new": ("x,y,w\n" + rows).encode()})()
    screen.upload1.filename = "ok.csv"
    screen._on_upload(1, event)
    assert screen.runner.points1.shape == (300, 2)
    assert screen.runner.weights1 is not None


def test_two_sessions_are_independent():
    a, b = CoupledEMScreen(), CoupledEMScreen()
    a.w_eps.value = next(iter(a.w_eps.options.values()))
    a._tick()
    assert b.runner.knobs.epsilon != a.runner.knobs.epsilon
    assert int(b.runner.view["iteration"]) == 0
