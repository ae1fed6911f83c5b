"""The recorded barycenter run: traced iterations per frame, and a replay through
``gmmot replay`` with identical numbers."""

import json

from gmmot_runs.barycenter import BarycenterRun, BarycenterSpec, _frame
from gmmot_runs.cli import main


def test_iterations_per_frame_do_not_recompile():
    """The "iterations per frame" slider is traced: 1, 3 and 1 iterations per frame run
    on one executable and do exactly that many iterations."""
    run = BarycenterRun()
    run.step()
    compiled = _frame._cache_size()
    done = [int(run.state.iteration)]
    for k in (3, 1):
        run.set(steps_per_frame=k)
        run.step()
        done.append(int(run.state.iteration))
    assert _frame._cache_size() == compiled
    assert done == [1, 4, 5]  # (the default run converges at its 5th iteration)


def test_run_replays_through_the_cli_with_identical_numbers(tmp_path):
    """A BarycenterRun with a weight move mid-run, exported and replayed by ``gmmot
    replay``: the same iterations, costs and support, bit for bit."""
    run = BarycenterRun(BarycenterSpec(n_inputs=2, n_components=2, bar_size=3, seed=4))
    for _ in range(3):
        run.step()
    run.set(lambdas=[0.9, 0.1], epsilon=0.2)
    run.set(steps_per_frame=10)
    run.step()
    assert run.view["iteration"] > 5 and run.view["converged"]
    params = tmp_path / "p.json"
    params.write_text(run.spec().to_json())
    out = tmp_path / "r.json"
    assert main(["replay", str(params), "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(json.dumps(run.results()))
    bad = json.loads(params.read_text()) | {"bar_size": 0}
    params.write_text(json.dumps(bad))
    assert main(["replay", str(params), "--out", str(out)]) == 2
