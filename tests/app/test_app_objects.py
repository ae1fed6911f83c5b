"""The app's Python objects driven directly (no browser): sessions are independent,
knobs act without recompiling, bad uploads keep the last good data."""

import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gmmot import compiled
from gmmot.compiled import release_if_crowded
from gmmot.knobs import nearest
from gmmot.screens.coupled_em import CoupledEMScreen
from gmmot.screens.descent import DescentScreen
from gmmot_runs.coupled_em import _frame


@pytest.fixture(scope="module")
def screen():
    return CoupledEMScreen()


def test_initial_view_has_everything(screen):
    view = screen.run.view
    assert view["report"].coupling.shape == (3, 3)
    assert np.isfinite(float(view["report"].total_mass))
    assert len(screen.figures.trace_src.data["it"]) == int(view["iteration"])
    assert len(screen.figures.pair[1]["links"].data["x0"]) >= 3


def test_frames_advance_and_knobs_do_not_recompile(screen):
    screen.param.trigger("step")
    before = _frame._cache_size()
    it0 = int(screen.run.view["iteration"])
    for eps in list(screen.w_eps.options.values())[::7]:
        screen.w_eps.value = eps
        screen.param.trigger("step")
    screen.w_bal.value = True
    screen.param.trigger("step")
    screen.w_wt.value = 0.0
    screen.param.trigger("step")
    it1 = int(screen.run.view["iteration"])
    assert it1 > it0 + 3
    screen.w_msteps.value, screen.w_per_frame.value = 7, 3  # integer sliders too
    screen.param.trigger("step")
    assert int(screen.run.view["iteration"]) == it1 + 3
    assert _frame._cache_size() == before  # sliders are traced leaves
    assert screen.run.knobs.tau == 1.0


def test_bad_upload_keeps_last_good_data(screen):
    good = screen.run.points0
    screen.upload(b"x,y\n1,2\nfoo,3\n", "bad.csv", which=0)
    assert screen.run.points0 is good
    assert "rejected" in screen.message and "non-numeric" in screen.message


def test_good_upload_replaces_cloud(screen):
    rows = "\n".join(
        f"{x:.4f},{y:.4f},1.0" for x, y in np.random.default_rng(0).normal(size=(300, 2))
    )
    screen.upload(("x,y,w\n" + rows).encode(), "ok.csv", which=1)
    assert screen.run.points1.shape == (300, 2)
    assert screen.run.weights1 is not None


def test_two_sessions_are_independent():
    a, b = CoupledEMScreen(), CoupledEMScreen()
    a.w_eps.value = next(iter(a.w_eps.options.values()))
    a.param.trigger("step")
    assert b.run.knobs.epsilon != a.run.knobs.epsilon
    assert int(b.run.view["iteration"]) == 0


def test_barycenter_of_the_coupled_em_pair_replays(screen):
    """The barycenter screen takes this session's coupled-EM pair as its two inputs (a
    single t slider), converges, and its parameter file replays to the same support."""
    import json

    from gmmot.screens.barycenter import BarycenterScreen
    from gmmot_runs.barycenter import BarycenterRun, BarycenterSpec

    view = screen.run.view
    bary = BarycenterScreen(pair_source=lambda: (view["gmm0"], view["gmm1"]))
    bary.w_source.value = "coupled-EM pair"
    assert bary.run.config.n_inputs == 2 and len(bary.w_weights) == 1 and not bary.message
    np.testing.assert_allclose(bary.run.view["inputs"][1].means, view["gmm1"].means, rtol=1e-6)
    for _ in range(10):
        bary.param.trigger("step")
    assert bary.run.view["converged"]
    spec = BarycenterSpec.from_dict(json.loads(bary.run.spec().to_json()))
    again = BarycenterRun.from_spec(spec)
    np.testing.assert_array_equal(again.view["means"], bary.run.view["means"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mixtures": [{"weights": [1.0], "means": [[0, 0]], "covs": [[[1, 0], [0, -1]]]}] * 2},
         "positive definite"),
        ({"mixtures": [{"weights": [1.0], "means": [[0, 0]]}] * 2}, "'mixtures[0].covs'"),
        ({"bar_size": 0}, "'bar_size'"),
        ({"init": "input 7"}, "'init'"),
        ({"segments": [{"frames": 1, "steps": 1, "values": {"lambdas": [1.0], "epsilon": 0.1,
          "restart": False}}]}, "'segments[0].values.lambdas': expected 3 weights"),
        ({"colour": "red"}, "unknown field 'colour'"),
    ],
)  # fmt: skip
def test_barycenter_parameter_file_names_the_bad_field(change, message):
    import json

    from gmmot_runs.barycenter import BarycenterSpec

    obj = json.loads(BarycenterSpec().to_json()) | change
    if "mixtures" in change:
        obj["n_inputs"] = 2
    with pytest.raises(ValueError, match=re.escape(message)):
        BarycenterSpec.from_dict(obj)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_barycenter_labels_do_not_overlap(seed, monkeypatch):
    """The labels of the notebook's inputs and their barycenter overlap neither each other
    nor another mixture's contour lines (seed 0 put 'input 3' on the barycenter's lines),
    and the inputs' density grids are computed once per run, not per frame."""
    import gmmot.screens.barycenter as screen_mod
    from gmmot.plots.contours import LABEL_CHAR, LABEL_HEIGHT

    calls = []
    real = screen_mod.input_grids
    monkeypatch.setattr(screen_mod, "input_grids", lambda *a: calls.append(1) or real(*a))
    bary = screen_mod.BarycenterScreen()
    bary.w_seed.value = seed
    before = len(calls)
    for _ in range(6):
        bary.param.trigger("step")
    assert len(calls) == before  # the frames reuse the run's input grids
    lab = bary.src["labels"].data
    lines = bary.src["lines"].data
    x0, x1 = bary._inputs_cache["xs"][[0, -1]]
    y0, y1 = bary._inputs_cache["ys"][[0, -1]]
    boxes = [
        (x - LABEL_CHAR * len(t) * (x1 - x0) / 2, x + LABEL_CHAR * len(t) * (x1 - x0) / 2,
         y, y + LABEL_HEIGHT * (y1 - y0))
        for x, y, t in zip(lab["x"], lab["y"], lab["text"], strict=True)
    ]  # fmt: skip
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[1] <= b[0] or b[1] <= a[0] or a[3] <= b[2] or b[3] <= a[2], (a, b)
    # lines are drawn input by input, then the barycenter's: who owns each line
    counts = [len(g["xs"]) for g in bary._inputs_cache["lines"]]
    counts.append(len(lines["xs"]) - sum(counts))
    owner = np.repeat(np.arange(len(counts)), counts)
    assert min(counts) > 0
    for g, box in enumerate(boxes):
        inside = 0
        for xs, ys, o in zip(lines["xs"], lines["ys"], owner, strict=True):
            if o != g:
                inside += np.sum((xs > box[0]) & (xs < box[1]) & (ys > box[2]) & (ys < box[3]))
        assert inside == 0, (lab["text"][g], inside)


def test_closed_tab_writes_are_one_info_line_and_other_errors_stay():
    """The server's asyncio log: a frame written to a closed tab's websocket becomes one
    INFO line without traceback; any other exception keeps its ERROR and traceback."""
    import logging
    import sys

    from tornado.websocket import WebSocketClosedError

    from gmmot.server_log import ClosedTabFilter

    def record(exc):
        try:
            raise exc
        except Exception:
            info = sys.exc_info()
        return logging.LogRecord(
            "asyncio", logging.ERROR, __file__, 1, "Task exception was never retrieved", (), info
        )

    f = ClosedTabFilter()
    closed = record(WebSocketClosedError())
    assert f.filter(closed) and closed.levelno == logging.INFO and closed.exc_info is None
    other = record(ZeroDivisionError("app bug"))
    assert (
        f.filter(other)
        and other.levelno == logging.ERROR
        and other.exc_info[0] is ZeroDivisionError
    )


def test_session_release_is_logged_with_the_sessions_left(caplog):
    """A released session's line names it and counts the others still live (the load
    test waits for "(0 live)"); the count excludes the session being released."""
    import logging
    from types import SimpleNamespace

    from gmmot.server_log import _released

    ids = ["a", "b", "c"]
    server = SimpleNamespace(sessions=[SimpleNamespace(id=i) for i in ids])
    with caplog.at_level(logging.INFO, logger="gmmot.sessions"):
        _released(SimpleNamespace(id="b", server_context=server))
        server.sessions = [SimpleNamespace(id="c")]
        _released(SimpleNamespace(id="c", server_context=server))
    assert [r.getMessage() for r in caplog.records] == [
        "session b released (2 live)",
        "session c released (0 live)",
    ]


def _maps() -> int:
    with open("/proc/self/maps", "rb") as f:
        return sum(1 for _ in f)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux /proc")
def test_compiled_executables_are_released_when_maps_crowd():
    """A long-running server compiling many shapes must not reach vm.max_map_count (it
    segfaults in the next compile); past the threshold every executable is dropped."""
    f = jax.jit(lambda x: jnp.sin(x) @ x.T)
    for k in range(1, 40):
        f(jnp.ones((k, 3)))
    before = _maps()
    assert not release_if_crowded(limit=10**9)  # far from the limit: nothing dropped
    assert f._cache_size() == 39
    assert release_if_crowded(fraction=0.5, limit=before)
    assert f._cache_size() == 0
    assert _maps() < before
    assert np.allclose(f(jnp.ones((2, 3))), np.sin(1.0) * 3)  # recompiles on the next call


def test_screens_keep_working_after_a_release(screen, monkeypatch):
    """With the threshold at zero every data change drops all executables; the screens
    recompile what they need and go on."""
    monkeypatch.setattr(compiled, "CROWDED", 0.0)
    rows = "\n".join(f"{x},{y}" for x, y in np.random.default_rng(3).normal(size=(123, 2)))
    screen.upload(("x,y\n" + rows).encode(), "released.csv", which=0)
    assert screen.run.points0.shape == (123, 2)
    screen.param.trigger("step")
    # the upload started a new run: its own iterations, counted from 0
    before = int(screen.run.view["iteration"])
    assert before > 0
    descent = DescentScreen()
    descent.w_n.value = 37  # a new N: released, then compiled again
    view = descent.run.step()
    assert view["positions"].shape == (37, 2) and view["step"] == descent.run.knobs.steps_per_frame
    assert np.isfinite(view["w2"]).all()
    screen.param.trigger("step")  # and the coupled-EM screen goes on after the descent's release
    assert int(screen.run.view["iteration"]) > before


def test_w2_fit_screen_builds_from_the_run_bounds_and_refuses_a_bad_upload():

    from gmmot.screens.w2_fit import W2FitScreen
    from gmmot_runs.w2_fit import BOUNDS

    s = W2FitScreen()
    assert s.run is None and (s.w_k.start, s.w_k.end) == BOUNDS["k"]
    assert (s.w_n.start, s.w_n.end) == BOUNDS["n"] and "10-5000" in s.w_n.label
    s.upload(b"x,y\n1,2\n")
    assert "File rejected" in s.alert.object and s.alert.alert_type == "warning"
    assert s._uploaded is None  # nothing replaced
    s.upload(b"x,y,w\n" + b"".join(b"%d,%d,1\n" % (i, i * i % 7) for i in range(30)))
    assert s.alert.alert_type == "success" and "weights from column 3" in s.alert.object
    assert s.w_cloud.value == "uploaded CSV" and len(s._uploaded["points"]) == 30


def test_barycenter_weights_shown_are_the_weights_used():
    """After a bar_size change the status line showed the default λ while the sliders
    (0.05 / 0.29 / 0.90) were used, normalised; the files and the figure labelled the raw
    slider values (sum 1.24) as λ. Now the run keeps λ normalised, set from the sliders
    before the new run is drawn: status line, view, parameter file and figure agree."""
    import json

    from gmmot.screens.barycenter import BarycenterScreen

    bary = BarycenterScreen()
    assert len(bary.w_weights) == 3
    for s, v in zip(bary.w_weights, (0.05, 0.29, 0.90), strict=True):
        s.value = v
    bary.w_bar.value = bary.w_bar.value + 1
    bary.rebuild()
    want = np.array([0.05, 0.29, 0.90]) / 1.24
    np.testing.assert_allclose(bary.run.view["lambdas"], want, rtol=1e-12)
    shown = ", ".join(f"{x:.2f}" for x in want)
    assert f"({shown})" in bary.counter.object, bary.counter.object
    bary.param.trigger("step")
    segment = json.loads(bary.run.spec().to_json())["segments"][-1]
    np.testing.assert_allclose(segment["values"]["lambdas"], want, rtol=1e-12)


def test_w2_fit_prepares_a_committed_k(monkeypatch):
    """Typing a new K and pressing Enter did nothing, and said nothing, until "Prepare
    this fit" was pressed: a committed N, K, raster or seed now prepares that fit (once the
    tab has a fit; the first opening prepares the default one)."""
    from gmmot.screens.w2_fit import W2FitScreen

    screen = W2FitScreen()
    asked = []
    monkeypatch.setattr(screen, "prepare", lambda *_: asked.append(screen.w_k.value))
    screen.w_k.value = 3
    assert asked == []  # not opened yet: opening the tab prepares
    monkeypatch.setattr(screen, "run", object())  # a fit is on screen
    screen.w_k.value = 4
    screen.w_res.value = 64
    assert asked == [4, 4]


def test_the_url_sets_each_screens_knobs_through_its_model():
    """``?coupled_em.epsilon=0.1&coupled_em.balanced=false&w2_fit.learning_rate=0.05``
    sets those controls (and so the runs); a value outside the model's bounds, or not a
    number, is refused with the model's words and the default kept."""
    from gmmot.knobs import knobs_from_url
    from gmmot.screens.w2_fit import W2FitScreen
    from gmmot.shell import _data_from_url, _knobs_from_url
    from gmmot_runs.coupled_em_spec import CoupledEMKnobs

    args = {
        "coupled_em.epsilon": [b"0.1"],
        "coupled_em.balanced": [b"false"],
        "coupled_em.rho": [b"1e9"],
        "w2_fit.learning_rate": [b"0.05"],
        "w2_fit.steps_per_frame": [b"many"],
        "epsilon": [b"5"],  # no kind: not a knob of any screen
    }
    values, refused = knobs_from_url(CoupledEMKnobs, "coupled_em", args)
    assert values == {"epsilon": 0.1, "balanced": False}
    assert refused == ["URL parameter coupled_em.rho=1e9: 1e+09 is outside [0.001, 10000]: ignored"]
    data, refused_data = _data_from_url({"n": [b"many"], "seed": [b"3"]})
    assert data.seed == 3 and refused_data == ["URL parameter n=many: not a valid value: ignored"]
    em, w2 = CoupledEMScreen(), W2FitScreen()
    _knobs_from_url(args, (em, w2), {em: refused_data})
    # the screen's own alert says what was refused (a notification sent while the page
    # was built never showed)
    assert em.message == f"{refused_data[0]}; {refused[0]}"
    assert em.w_eps.value == 0.1 and em.w_bal.value is False and em.w_rho.value == 1.0
    assert w2.w_lr.value == 0.05 and w2.w_steps.value == 5
    em.param.trigger("step")
    assert em.run.knobs.epsilon == 0.1 and not em.run.knobs.balanced


def test_the_url_opens_a_tab_with_its_settings_and_knobs():
    """``?tab=descent&n=300&lr=50``: the names alone are the opened tab's settings and
    knobs (from its models); a value out of a setting's bounds or choices is refused
    with them named and the default kept; ``w2_fit.k=3`` reaches a tab not opened; a
    tab that does not exist is refused with the kinds named."""
    from gmmot.screens.w2_fit import W2FitScreen
    from gmmot.shell import SCREENS, _knobs_from_url, _tab_from_url

    kinds = [c.kind for c in SCREENS]
    assert _tab_from_url({"tab": [b"descent"]}, kinds) == ("descent", [])
    tab, refused = _tab_from_url({"tab": [b"lloyd"]}, kinds)
    assert tab == "coupled_em" and refused == [
        "URL parameter tab=lloyd: expected one of coupled_em, descent, barycenter, transport, "
        "w2_fit: ignored"
    ]
    em, descent, w2 = CoupledEMScreen(), DescentScreen(), W2FitScreen()
    args = {
        "tab": [b"descent"],
        "n": [b"300"],
        "lr": [b"50"],
        "seed": [b"-1"],
        "init": [b"grid"],
        "w2_fit.k": [b"3"],
        "w2_fit.res": [b"50"],
        "k": [b"5"],  # bare: the descent's, which has no k
    }
    _knobs_from_url(args, (em, descent, w2), tab=descent)
    assert descent.w_n.value == 300 and descent.w_lr.value == nearest(descent.w_lr.options, 50)
    assert descent.w_seed.value == 0 and descent.w_init.value == "random"
    assert descent.message == (
        "URL parameter lr=50: its slider's nearest value 56.2 is used; "
        "URL parameter init=grid: expected one of random, sample, got 'grid': ignored; "
        "URL parameter seed=-1: -1 is outside [0, 2147483647]: ignored"
    )
    assert w2.w_k.value == 3 and w2.w_res.value == 48
    assert "URL parameter w2_fit.res=50: expected one of 32, 48, 64, 96, 128" in w2.message
    assert em.data.n == CoupledEMScreen().data.n and not em.message  # bare n: not em's
    # a slider setting (it acts on release) of the first tab, by its kind's name
    _knobs_from_url({"coupled_em.k": [b"4"], "barycenter.bar_size": [b"9"]}, (em,))
    assert em.w_k.value == 4 and em.run.structure.k == 4


@pytest.mark.parametrize("kind", ["coupled_em", "descent", "barycenter"])
def test_step_and_reset_events_move_the_run_and_bring_it_back(kind):
    """The Step and Reset buttons' events (``screen.param.trigger``): two frames move the
    run's counter, Reset brings the run back to its start and the screen shows it
    (coupled EM's frame counter restarts; the others' counters show the step)."""
    from gmmot.screens.barycenter import BarycenterScreen

    screen = {"coupled_em": CoupledEMScreen, "descent": DescentScreen}.get(kind, BarycenterScreen)()
    name = screen.run.counter[0]
    start = int(screen.run.view[name])
    screen.param.trigger("step")
    screen.param.trigger("step")
    assert int(screen.run.view[name]) > start
    screen.param.trigger("reset")
    assert int(screen.run.view[name]) == start
    assert not screen.playing and not screen.alert.visible
    if kind == "coupled_em":
        assert screen.frame_count == 0 and "**frame** 0 " in screen.counter.object
    else:
        assert re.search(rf"\*\*{name}\*\* {start}\b", screen.counter.object), screen.counter.object


def test_the_page_makes_each_tab_on_its_first_opening():
    """Only the opened tab and its sidebar are made with the page (all five tabs were
    ~1,200 Bokeh models, 2-6 s of server time before a new tab's first frame); another
    tab's figures and widgets are made when it is first opened, and kept."""
    import panel as pn
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    from gmmot.shell import build

    doc = Document()
    with set_curdoc(doc):
        page = build(autoplay=False)
        page.server_doc(doc)
        tabs = page.main[0]

        def figures(i: int) -> list:
            return [p.object for p in tabs.objects[i].select(pn.pane.Bokeh)]

        made = len(doc.models)
        assert figures(0) and all(f.document is doc for f in figures(0))  # the opened tab's
        assert not figures(1) and list(page.sidebar[1]) == []
        tabs.active = 1
        shown = figures(1)
        assert shown and all(f.document is doc for f in shown)
        assert len(page.sidebar[1]) > 5 and len(doc.models) > made + 100
        widgets = list(page.sidebar[1])
        tabs.active = 0  # the tab left keeps its models on the page
        assert all(f.document is doc for f in shown)
        tabs.active = 1  # made once: the same figures and widgets again
        assert figures(1) == shown and list(page.sidebar[1]) == widgets
