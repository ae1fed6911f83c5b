"""Fuzzing with hypothesis (issue 9): the upload parser, the image reader, the three
parameter-file parsers and the core steps, on random valid-looking and invalid inputs.
A parser either returns clean data or raises ValueError with a message (nothing else
escapes); a core step never raises and flags what it could not use (NaN is a flag).
Example counts are in each ``settings``; the seed is fixed (``derandomize``) so CI runs
the same examples every time."""

from __future__ import annotations

import copy
import io
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmmot_core import coupled_em as ce
from gmmot_core import synthetic
from gmmot_core.io import MIN_POINTS, parse_points
from gmmot_core.mixture import kmeans_pp
from gmmot_core.targets import image_from_bytes
from gmmot_runs.segments import Segment

FUZZ = settings(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def fuzz(examples: int) -> settings:
    return settings(FUZZ, max_examples=examples)


CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["nan", "inf", "-inf", "", " ", "x", "1e400", "0x10", "1,5", '"3"', "#"]),
    st.text(max_size=4),
)
ROWS = st.lists(st.lists(CELLS, min_size=0, max_size=4), min_size=0, max_size=30)


def _text(rows, sep, header):
    lines = [sep.join(["x", "y", "w"][: max(1, len(rows[0]) if rows else 2)])] if header else []
    return ("\n".join(lines + [sep.join(r) for r in rows])).encode()


def _check_points(out):
    pts, w, note = out
    assert pts.dtype == np.float32 and pts.ndim == 2 and pts.shape[1] == 2
    assert pts.shape[0] >= MIN_POINTS and np.all(np.isfinite(pts))
    assert w is None or (w.shape == (pts.shape[0],) and np.all(w >= 0) and w.sum() > 0)
    assert isinstance(note, str)


@fuzz(400)
@given(rows=ROWS, sep=st.sampled_from([",", "\t", " ", ";"]), header=st.booleans())
def test_upload_parser_text(rows, sep, header):
    try:
        out = parse_points(_text(rows, sep, header), "cloud.csv")
    except ValueError:
        return
    _check_points(out)


@fuzz(200)
@given(data=st.binary(max_size=512), name=st.sampled_from(["a.csv", "a.npy", "a.tsv", ""]))
def test_upload_parser_bytes(data, name):
    try:
        out = parse_points(data, name)
    except ValueError:
        return
    _check_points(out)


@fuzz(150)
@given(
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=3),
    dtype=st.sampled_from(["<f4", "<f8", "<i4", "|u1", "<c8", "|b1", "<U3"]),
    fill=st.sampled_from([0.0, 1.0, np.nan, np.inf, -1.0, 1e30]),
)
def test_upload_parser_npy(shape, dtype, fill):
    if dtype[1] in "iub" and not abs(fill) < 100:
        fill = 7.0  # NaN, inf and 1e30 have no small-integer value
    arr = np.full(shape, fill).astype(dtype) if dtype != "<U3" else np.full(shape, "a")
    arr = (
        arr + np.arange(arr.size).reshape(arr.shape).astype(arr.dtype)
        if arr.size and dtype[1] in "fi"
        else arr
    )
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    try:
        out = parse_points(buf.getvalue(), "cloud.npy")
    except ValueError:
        return
    _check_points(out)


def _png(array, mode="L", fmt="PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format=fmt)
    return buf.getvalue()


@fuzz(120)
@given(
    w=st.integers(1, 40),
    h=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    fmt=st.sampled_from(["PNG", "JPEG", "BMP"]),
    cut=st.one_of(st.none(), st.integers(0, 200)),
    invert=st.booleans(),
)
def test_image_reader(w, h, seed, fmt, cut, invert):
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    data = _png(pixels, fmt=fmt)
    if cut is not None:
        data = data[:cut]
    try:
        values = image_from_bytes(data, invert)
    except ValueError:
        return
    assert values.shape == (w, h) and np.all(np.isfinite(values)) and values.min() >= 0
    assert values.max() > 0


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(obj, prefix=()):
    """Every path into a JSON object (dict keys and list indices)."""
    yield prefix
    items = (
        obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    )
    for key, value in items:
        yield from _paths(value, (*prefix, key))


def _mutate(data, base):
    obj = copy.deepcopy(base)
    paths = [p for p in _paths(obj) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = obj
        try:
            for key in path[:-1]:
                parent = parent[key]
            op = data.draw(st.sampled_from(["replace", "delete", "add"]))
            if op == "replace":
                parent[path[-1]] = data.draw(JSON)
            elif op == "delete" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, dict):
                parent[data.draw(st.text(max_size=5))] = data.draw(JSON)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed that path
    return obj


@pytest.fixture(scope="module")
def specs():
    """A valid parameter file of each kind (as decoded JSON) and its parser."""
    from gmmot_runs.barycenter import BarycenterSpec
    from gmmot_runs.coupled_em import CoupledEMRun, RunSpec
    from gmmot_runs.descent import DescentSpec

    pts = np.random.default_rng(0).normal(size=(24, 2)).astype(np.float32)
    run = CoupledEMRun(pts, pts + 1.0, data={"inline": True})
    run.step()
    two_peaks = {"preset": "tutorial two peaks", "res": 64}
    segments = [
        Segment(1, 2, {"lr": 1.0, "lloyd": True}),
        Segment(1, 1, {"lr": 0.01, "lloyd": False}),
    ]
    descent = DescentSpec(two_peaks, 10, "random", 0, segments)
    mixtures = [
        {"weights": [0.5, 0.5], "means": [[0.0, 0.0], [1.0, 1.0]], "covs": [np.eye(2).tolist()] * 2}
    ] * 2
    barycenter = BarycenterSpec(
        segments=[Segment(1, 2, {"lambdas": [0.5, 0.5], "epsilon": 0.1, "restart": False})],
        mixtures=mixtures,
        n_inputs=2,
    )
    return {
        "coupled_em": (RunSpec.from_dict, json.loads(run.spec().to_json())),
        "descent": (DescentSpec.from_dict, json.loads(descent.to_json())),
        "barycenter": (BarycenterSpec.from_dict, json.loads(barycenter.to_json())),
    }


@pytest.mark.parametrize("kind", ["coupled_em", "descent", "barycenter"])
def test_valid_parameter_files_parse(specs, kind):
    parse, base = specs[kind]
    parse(copy.deepcopy(base))  # the mutations below start from files that are valid


@pytest.mark.parametrize("kind", ["coupled_em", "descent", "barycenter"])
@fuzz(300)
@given(data=st.data())
def test_parameter_file_parsers(specs, kind, data):
    parse, base = specs[kind]
    obj = _mutate(data, base)
    try:
        parse(obj)
    except ValueError as exc:
        assert str(exc)  # a message, naming what is wrong


RUN = jax.jit(ce.run, static_argnums=2)  # compiled once: the knobs and points are traced


@pytest.fixture(scope="module")
def em_state():
    x0, _ = synthetic.demo_pair(64, 0)
    cfg = ce.CoupledEMConfig(em_steps=2, m_steps=3, trace_length=4)
    g0 = kmeans_pp(jax.random.key(0), jnp.asarray(x0), 3)
    return ce.init(g0, g0, ce.Knobs.make(), cfg), cfg


KNOB = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([0.0, -1.0, 1e-30, 1e30, np.nan, np.inf]),
)
COORD = st.one_of(
    st.floats(-1e6, 1e6, width=32), st.sampled_from([np.nan, np.inf, -np.inf, 1e30, 0.0])
)


@fuzz(200)
@given(
    knobs=st.tuples(KNOB, KNOB, KNOB, KNOB),
    points=st.lists(st.tuples(COORD, COORD), min_size=64, max_size=64),
    seed=st.integers(0, 1000),
)
def test_coupled_em_step_never_raises_and_flags(em_state, knobs, points, seed):
    """Any knobs and any points (a fixed shape: one compile): the step returns finite
    mixtures, and what it could not use is in ``status``."""
    state, cfg = em_state
    eps, tau, wt, lr = knobs
    state = state._replace(knobs=ce.Knobs.make(eps, tau, wt, lr))
    x0 = np.asarray(points, np.float32)
    x1 = synthetic.demo_pair(64, seed % 7)[1]
    out = RUN(state, ce.PairData.make(x0, x1), cfg)
    status = int(out.status)
    for g in ce.mixtures(out):
        for x in g:
            assert np.all(np.isfinite(np.asarray(x)))
    bad_knob = not all(np.isfinite(k) for k in knobs) or not eps > 0 or not 0 < tau <= 1
    if bad_knob:
        assert status & ce.BAD_KNOBS
    if not np.all(np.isfinite(x0)):
        assert status & (ce.NONFINITE_POINTS | ce.BAD_KNOBS)


SPOT = st.one_of(
    st.floats(-0.5, 1.5, width=32),
    st.sampled_from([0.0, 1.0, 0.5, -3.0, 4.0]),  # on the border, stacked, far outside
)


@fuzz(60)
@given(
    points=st.lists(st.tuples(SPOT, SPOT), min_size=12, max_size=12),
    seed=st.integers(0, 1000),
    nan=st.booleans(),
)
def test_semidiscrete_solve_never_hangs_and_flags(points, seed, nan):
    """Any 12 Diracs (inside, on the border, outside, stacked; NaN) on a random 16 x 16
    density: the solve returns, converged to its tolerance or with a flag set."""
    from gmmot_core.semidiscrete.density import image_density
    from gmmot_core.semidiscrete.newton import solve_weights

    jax.config.update("jax_enable_x64", True)
    try:
        values = np.random.default_rng(seed).random((16, 16)) + 0.05
        y = np.asarray(points, np.float64)
        if nan:
            y[seed % 12] = np.nan
        res = solve_weights(jnp.asarray(y), jnp.full(12, 1 / 12), image_density(values))
        status, err = int(res.status), float(res.error)
        assert status != 0 or err <= 1e-8
        if nan or len(np.unique(y, axis=0)) < 12:
            assert status != 0  # NaN or stacked Diracs are never reported as solved
    finally:
        jax.config.update("jax_enable_x64", False)
