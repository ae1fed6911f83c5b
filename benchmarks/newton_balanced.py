"""Balanced Newton OT inside coupled EM on ill-conditioned pairs, float32 and float64, vs OTT.

Setup: the test suite's separated K=2 pairs (``tests/helpers.separated_pair``: blobs 1.75
and 5.5 apart, off-diagonal Bures costs ~30x and ~300x eps), coupled EM in the app's
default mode (balanced, eps 0.1, weight_transport 0.1, lr 1e-2, threshold 1e-3, Newton
warm-started from the previous Adam step's potentials), 10 EM iterations x 20 Adam steps.
Every Newton solve of the run is recorded (its cost, weights and warm start) and solved
again on its own, in float32 and in float64, by ``newton_ot`` and by the peer, OTT-JAX's
Sinkhorn (threshold 1e-3, cap 1e5 sweeps, cold start as OTT). Reported per case: solves,
unconverged solves, Newton iterations (mean, max), the largest L1 column error (in
float64 arithmetic on the returned coupling), and wall time of all solves, warm (each
solver jitted once per dtype; ``block_until_ready``).

Usage: python benchmarks/newton_balanced.py   (ends with one JSON line per case)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers import separated_pair  # noqa: E402

import gmmot_core.coupled_em as ce  # noqa: E402
from gmmot_core.newton_ot import newton_ot  # noqa: E402

SEPARATIONS = {"cost30eps": 1.75, "cost300eps": 5.5}


def record_solves(separation: float) -> list[dict]:
    """The inputs of every Newton solve of a 10-iteration default-mode coupled EM run."""
    solves = []

    def keep(cost, a, b, g, warm):
        solves.append(dict(cost=np.array(cost), a=np.array(a), b=np.array(b), g=np.array(g)))
        solves[-1]["warm"] = bool(warm)

    def recording(cost, a, b, eps, *, threshold, init, warm):
        jax.debug.callback(keep, cost, a, b, init[1], warm)
        return newton_ot(cost, a, b, eps, threshold=threshold, init=init, warm=warm)

    ce.newton_ot = recording  # the run's own calls, recorded
    jax.clear_caches()  # a cached run would call back into an earlier case's list
    try:
        x0, x1, g0, g1 = separated_pair(separation)
        cfg = ce.CoupledEMConfig(em_steps=10, m_steps=20, trace_length=16)
        state = ce.init(g0, g1, ce.Knobs.make(0.1, 1.0, 0.1, 1e-2, 1e-3), cfg)
        jax.block_until_ready(
            jax.jit(ce.run, static_argnames="config")(state, ce.PairData.make(x0, x1), cfg)
        )
    finally:
        ce.newton_ot = newton_ot
    return solves


def ours(solves, dtype):
    solve = jax.jit(
        lambda c, a, b, g, w: newton_ot(c, a, b, 0.1, init=(jnp.zeros_like(a), g), warm=w)
    )
    args = [
        (*(jnp.asarray(s[k], dtype) for k in ("cost", "a", "b", "g")), s["warm"]) for s in solves
    ]
    jax.block_until_ready(solve(*args[0]))
    t = time.perf_counter()
    outs = [jax.block_until_ready(solve(*x)) for x in args]
    return outs, time.perf_counter() - t


def ott(solves, dtype):
    from ott.geometry import geometry
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn

    solver = sinkhorn.Sinkhorn(max_iterations=100_000, threshold=1e-3)

    @jax.jit
    def solve(c, a, b):
        return solver(linear_problem.LinearProblem(geometry.Geometry(c, epsilon=0.1), a, b))

    args = [tuple(jnp.asarray(s[k], dtype) for k in ("cost", "a", "b")) for s in solves]
    jax.block_until_ready(solve(*args[0]).matrix)
    t = time.perf_counter()
    outs = [jax.block_until_ready(solve(*x)) for x in args]
    return outs, time.perf_counter() - t


def column_error(coupling, b) -> float:
    return float(np.abs(np.asarray(coupling, np.float64).sum(0) - b).sum())


def main() -> None:
    lines = []
    for case, separation in SEPARATIONS.items():
        solves = record_solves(separation)
        for dtype in ("float32", "float64"):
            with jax.enable_x64(dtype == "float64"):  # OTT's outputs read in their mode
                mine, ours_s = ours(solves, dtype)
                peer, peer_s = ott(solves, dtype)
                iters = np.array([int(o.n_iters) for o in mine])
                unconverged = sum(not bool(o.converged) for o in mine)
                err = max(
                    column_error(o.coupling, s["b"]) for o, s in zip(mine, solves, strict=True)
                )
                peer_iters = np.array([int(o.n_iters) for o in peer])
                peer_err = max(
                    column_error(o.matrix, s["b"]) for o, s in zip(peer, solves, strict=True)
                )
            row = dict(
                bench="newton_balanced",
                case=f"{case} {dtype}",
                solves=len(solves),
                unconverged=unconverged,
                iters_mean=round(float(iters.mean()), 2),
                iters_max=int(iters.max()),
                col_err_max=err,
                peer_iters_mean=round(float(peer_iters.mean()), 1),
                peer_col_err_max=peer_err,
                ours_s=round(ours_s, 4),
                peer="ott",
                peer_s=round(peer_s, 4),
                ratio=round(peer_s / ours_s, 2),
            )
            print(
                f"{row['case']:>20}: {len(solves)} solves, {unconverged} unconverged, Newton "
                f"iterations mean {row['iters_mean']} max {row['iters_max']}, column error "
                f"<= {err:.2e}; OTT sweeps mean {row['peer_iters_mean']}, error <= {peer_err:.2e}"
            )
            lines.append(row)
    for row in lines:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
