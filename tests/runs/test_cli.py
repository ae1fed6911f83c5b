"""Every parameter-file kind refuses a bad field by name, through the one replay path
(``gmmot replay``: read, dispatch on the kind, validate), before any solver runs."""

import json

import numpy as np
import pytest

from gmmot_runs.barycenter import BarycenterSpec
from gmmot_runs.cli import main
from gmmot_runs.coupled_em_spec import CoupledEMKnobs, RunSpec
from gmmot_runs.descent import DescentSpec
from gmmot_runs.segments import Segment
from gmmot_runs.w2_fit import W2FitSpec


def _coupled_em() -> dict:
    g = {
        "weights": [0.5, 0.5],
        "means": [[0.0, 0.0], [1.0, 1.0]],
        "covs": [np.eye(2).tolist()] * 2,
    }
    from gmmot_core.mixture import GMM

    gmm = GMM(*(np.asarray(g[k], np.float32) for k in ("weights", "means", "covs")))
    values = {"m_steps": 2, "epsilon": 0.01, "tau": 1.0, "weight_transport": 0.1}
    seg = Segment(1, 1, values | {"learning_rate": 1e-3})
    spec = RunSpec({"preset": "demo pair", "n": 50, "seed": 0}, 2, 0, 8, (gmm, gmm), [seg])
    spec.knobs = CoupledEMKnobs().values()
    return json.loads(spec.to_json())


def _gmm_target() -> dict:
    return {
        "preset": "gaussian mixture",
        "res": 32,
        "weights": [1.0],
        "means": [[0.5, 0.5]],
        "covs": [[[0.01, 0.0], [0.0, 0.01]]],
    }


BASES = {
    "coupled_em": _coupled_em,
    "descent": lambda: json.loads(
        DescentSpec(
            _gmm_target(), 10, segments=[Segment(1, 1, {"lr": 1.0, "lloyd": True})]
        ).to_json()
    ),
    "barycenter": lambda: json.loads(
        BarycenterSpec(
            segments=[Segment(1, 1, {"lambdas": [1, 1, 1], "epsilon": 0.1, "restart": False})]
        ).to_json()
    ),
    "w2_fit": lambda: json.loads(
        W2FitSpec(
            {"preset": "three blobs", "n": 200, "seed": 0},
            segments=[Segment(1, 2, {"learning_rate": 0.01})],
        ).to_json()
    ),
}


def _set(obj: dict, path: str, value):
    keys = path.split(".")
    for k in keys[:-1]:
        obj = obj[int(k)] if isinstance(obj, list) else obj[k]
    if value is KeyError:
        del obj[keys[-1]]
    else:
        obj[keys[-1]] = value


BAD = [
    ("coupled_em", "structure.k", 99, "field 'structure.k': 99 is outside"),
    ("coupled_em", "data.preset", "spiral", "field 'data.preset': unknown preset"),
    ("coupled_em", "segments.0.values.tau", "x", "'segments[0].values.tau': expected a finite"),
    ("coupled_em", "segments.0.steps", 0, "field 'segments[0].steps': 0 is outside [1, 20]"),
    ("descent", "target.means", KeyError, "missing field 'target.means'"),
    ("descent", "target.covs", [[[1.0, 2.0], [2.0, 1.0]]], "'target.covs': covariances must be"),
    ("descent", "target.res", 2, "field 'target.res': 2 is outside [4, 1024]"),
    ("descent", "n", 1, "field 'n': 1 is outside [2, 5000]"),
    ("descent", "segments.0.values.lr", "fast", "'segments[0].values.lr': expected a number"),
    ("descent", "segments.0.values.speed", 1, "unknown field 'segments[0].values.speed'"),
    ("descent", "segments", [[1, 1.0, True]], "field 'segments[0]': expected an object"),
    ("descent", "colour", "red", "unknown field 'colour'"),
    ("barycenter", "alpha", -1.0, "field 'alpha': -1.0 is outside"),
    ("barycenter", "init", "input 7", "field 'init': 'input 7' is not one of"),
    ("barycenter", "segments.0.values.lambdas", [1, 1], "lambdas': expected 3 weights >= 0"),
    ("w2_fit", "segments.0.frames", 0, "field 'segments[0].frames': 0 is outside"),
    ("w2_fit", "k", 0, "field 'k': 0 is outside"),
    ("w2_fit", "cloud.preset", "spiral", "field 'cloud.preset': 'spiral' is not one of"),
    ("w2_fit", "res", 50, "field 'res': 50 is not one of"),
    ("w2_fit", "kind", "w3_fit", "field 'kind': 'w3_fit' is not one of"),
]


@pytest.mark.parametrize(
    ("kind", "path", "value", "message"), BAD, ids=[f"{b[0]}-{b[1]}" for b in BAD]
)
def test_every_kind_names_the_bad_field(tmp_path, capsys, kind, path, value, message):
    obj = BASES[kind]()
    _set(obj, path, value)
    params = tmp_path / "bad.json"
    params.write_text(json.dumps(obj))
    assert main(["replay", str(params), "--out", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gmmot: error: {params}: ") and message in err, err
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("kind", sorted(BASES))
def test_the_valid_base_files_parse(kind):
    """The bad files above differ from these in one field only."""
    from gmmot_runs.run import RUNS
    from gmmot_runs.spec import kind_of

    obj = BASES[kind]()
    assert kind_of(obj) == kind and kind in RUNS
    parse = {
        "coupled_em": RunSpec.from_dict,
        "descent": DescentSpec.from_dict,
        "barycenter": BarycenterSpec.from_dict,
        "w2_fit": W2FitSpec.from_dict,
    }[kind]
    parse(obj)


def test_every_kind_is_one_run_protocol():
    """Every kind a parameter file may name is a concrete Run with its own Spec; an
    unknown kind is refused by name before any solver module is imported."""
    import inspect

    from gmmot_runs.run import RUNS, Run, replay, run_class
    from gmmot_runs.spec import SpecError

    assert sorted(RUNS) == sorted(BASES)
    for kind in RUNS:
        cls = run_class(kind)
        assert issubclass(cls, Run) and not inspect.isabstract(cls), kind
        assert cls.kind == kind
        assert callable(cls.Spec.from_dict) and callable(cls.Spec.to_json)
    with pytest.raises(SpecError, match="field 'kind': 'lloyd' is not one of"):
        replay({"kind": "lloyd", "version": 1})


# version 1 wrote a row per frame (coupled EM: a flat object); version 2 the segment record
V1_ROWS = {
    "coupled_em": lambda s: {"frames": s["frames"], "em_per_frame": s["steps"], **s["values"]},
    "descent": lambda s: [s["steps"], s["values"]["lr"], s["values"]["lloyd"]],
    "barycenter": lambda s: [
        s["steps"],
        *(s["values"][n] for n in ("lambdas", "epsilon", "restart")),
    ],
    "w2_fit": lambda s: [s["steps"], s["values"]["learning_rate"]],
}


@pytest.mark.parametrize("kind", sorted(BASES))
def test_a_version_1_file_reads_as_its_version_2_rewrite(kind):
    from gmmot_runs.run import read_spec

    new = BASES[kind]()
    assert new["version"] == 2 and all(s["frames"] == 1 for s in new["segments"])
    old = new | {"version": 1, "segments": [V1_ROWS[kind](s) for s in new["segments"]]}
    _, spec = read_spec(old)
    assert json.loads(spec.to_json()) == new


def test_a_bad_version_1_row_is_named():
    from gmmot_runs.run import read_spec
    from gmmot_runs.spec import SpecError

    old = BASES["descent"]() | {"version": 1, "segments": [[1, "fast", True]]}
    with pytest.raises(SpecError, match=r"field 'segments\[0\]\.lr': expected a number"):
        read_spec(old)
    with pytest.raises(SpecError, match=r"field 'segments\[0\]': expected \[steps, lr, lloyd\]"):
        read_spec(old | {"segments": [[1, 1.0]]})
    with pytest.raises(SpecError, match=r"field 'segments\[0\]\.steps': 0 is outside \[1, 1000\]"):
        read_spec(old | {"segments": [[0, 1.0, True]]})
