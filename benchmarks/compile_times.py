"""Compile time of every program a first visit needs, each case cold in its own process.

Each case runs in a fresh interpreter without the persistent compilation cache, with
``jax_log_compiles`` on; the seconds JAX logs for tracing, lowering and XLA compilation
are summed per jitted function. There is no peer for a compile: each case is compared
with the budget of issue 28 (``peer`` = ``budget``, ``ratio`` = budget / ours, above 1
is within it).

    python benchmarks/compile_times.py            # the default cases
    python benchmarks/compile_times.py --all      # also N = 500 and 5000 and a 256^2 target
    python benchmarks/compile_times.py --only descent   # the cases whose name has "descent"
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from collections import defaultdict

BUDGET = {
    "newton": 20.0,
    "descent_step": 20.0,
    "coupled_em": 3.0,
    "barycenter": 2.0,
    "w2_fit": 20.0,
}
DEFAULT = [
    "coupled_em K=2", "coupled_em K=3", "coupled_em K=8", "barycenter",
    "descent N=200 64^2", "descent N=1000 64^2", "descent N=2000 64^2", "w2_fit N=2000",
]  # fmt: skip
MORE = ["descent N=500 64^2", "descent N=5000 64^2", "descent N=2000 256^2"]
LINE = re.compile(r"Finished (.*?) (?:of|for) (\S+) in ([0-9.e-]+) sec")


def _child(case: str) -> None:
    import jax

    times: dict[str, float] = defaultdict(float)

    class Grab(logging.Handler):
        def emit(self, record):
            m = LINE.search(record.getMessage())
            if m:
                times[re.sub(r"^jit\((.*)\)$", r"\1", m.group(2))] += float(m.group(3))

    logger = logging.getLogger("jax")
    logger.addHandler(Grab())
    logger.setLevel(logging.DEBUG)
    jax.config.update("jax_log_compiles", True)
    t0 = time.perf_counter()
    parts = _run_case(case)
    wall = time.perf_counter() - t0
    out = {k: round(v, 2) for k, v in sorted(times.items(), key=lambda kv: -kv[1]) if v >= 0.05}
    groups = {
        name: round(sum(times.values()) if funs == ["*"] else sum(times[f] for f in funs), 2)
        for name, funs in parts.items()
    }
    print(json.dumps({"case": case, "wall_s": round(wall, 2), "groups": groups, "funs": out}))


def _run_case(case: str) -> dict[str, list[str]]:
    """Run the case's first use; the jitted functions that make up each budgeted part."""
    kind, *args = case.split()
    opts = dict(a.split("=") for a in args if "=" in a)
    if kind == "coupled_em":
        from gmmot.models import DataSource
        from gmmot_runs.coupled_em import CoupledEMRun
        from gmmot_runs.coupled_em_spec import Structure

        clouds = DataSource().clouds()
        CoupledEMRun(*clouds, structure=Structure(k=int(opts["K"]))).step()
        return {"coupled_em": ["_frame"], "start": ["_pooled_fit", "point_features"]}
    if kind == "barycenter":
        from gmmot_runs.barycenter import BarycenterRun

        BarycenterRun().step()
        return {"barycenter": ["*"]}  # every program of the run
    if kind == "descent":
        from gmmot_runs.descent import DescentRun

        res = int(args[1].split("^")[0])
        DescentRun({"preset": "tutorial two peaks", "res": res}, n=int(opts["N"])).step()
        # every program of a bucket: since the cold solve and the cells are frames of
        # the descent (one _run), newton_solve and _cells should not appear
        return {"descent_step": ["_run", "newton_solve", "_cells"]}
    if kind == "w2_fit":
        from gmmot_runs.w2_fit import W2FitRun

        W2FitRun({"preset": "three blobs", "n": int(opts["N"]), "seed": 0}, k=3).step()
        return {"w2_fit": ["_frame"]}
    raise ValueError(case)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--case":
        _child(sys.argv[2])
        return
    cases = DEFAULT + (MORE if "--all" in sys.argv else [])
    if "--only" in sys.argv:
        part = sys.argv[sys.argv.index("--only") + 1]
        cases = [c for c in cases if part in c]
    env = dict(os.environ, GMMOT_JAX_CACHE="off", PYTHONPATH=os.getcwd())
    rows = []
    for case in cases:
        p = subprocess.run(
            [sys.executable, __file__, "--case", case], env=env, capture_output=True, text=True
        )
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        if p.returncode or not lines:
            print(f"{case}: failed\n{p.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(lines[-1])
        rows.append(row)
        top = dict(list(row["funs"].items())[:4])
        print(f"{case:24s} wall {row['wall_s']:7.1f} s  {row['groups']}  top {top}")
    for row in rows:
        for part, secs in row["groups"].items():
            if part in BUDGET:
                b = BUDGET[part]
                print(json.dumps({
                    "bench": "compile", "case": f"{row['case']}: {part}", "ours_s": secs,
                    "peer": "budget", "peer_s": b, "ratio": round(b / max(secs, 1e-3), 2),
                }))  # fmt: skip


if __name__ == "__main__":
    main()
