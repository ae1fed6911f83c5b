"""GMM barycenter: gmmot_core vs OTT-JAX 0.6.0 ``FreeWassersteinBarycenter`` (Bures cost).

Cases: the notebook setup of ``tests/reference/barycenter`` (3 inputs with 2/3/5
components, bar_size 6, eps 0.1, from its ``x_init``), and a larger one (8 inputs of 10
components, bar_size 50). Both sides jitted and timed warm (best of 3,
block_until_ready); ``compile_s`` is trace + lower + XLA compile of our ``run``
(up to 50 steps, stops when converged).
Ours: ``newton`` (the default: warm-started semi-dual Newton, converged plans) and
``ott-rules`` (cold Sinkhorn capped at 2000 sweeps, as OTT). OTT's Sinkhorn is
unconverged at eps = 0.1 on these costs (~1e3), so Newton's costs differ from OTT's by
~1e-4 (notebook) to ~1e-3 (large case): that is OTT's truncation, see
``tests/test_barycenter.py::test_newton_barycenter_is_the_converged_one_x64``.
Prints one JSON line per case at the end.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gmmot_core import GMM, synthetic
from gmmot_core import barycenter as bc

REF = Path(__file__).resolve().parents[1] / "tests/reference/barycenter/barycenter.json"


def best_of(fn, *args, n=3):
    out = jax.block_until_ready(fn(*args))
    best = np.inf
    for _ in range(n):
        t = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return out, best


MODES = {
    "newton": bc.BarycenterConfig(),
    "ott-rules": bc.BarycenterConfig(solver="sinkhorn", warm_start=False),
}


def ours(mixtures, lambdas, eps, means, covs, cfg):
    inputs = bc.pad_inputs(mixtures)
    b = len(means)
    state = bc.init(
        GMM(jnp.full(b, 1 / b), jnp.asarray(means), jnp.asarray(covs)),
        inputs,
        jnp.asarray(lambdas),
        eps,
        config=cfg,
    )
    run = jax.jit(bc.run, static_argnames=("config", "k"))
    t = time.perf_counter()
    compiled = run.lower(state, inputs, cfg, cfg.max_iterations).compile()
    compile_s = time.perf_counter() - t
    out, secs = best_of(lambda s, i: compiled(s, i), state, inputs)
    return out, secs, compile_s


def ott(mixtures, lambdas, eps, means, covs):
    from ott.geometry import costs
    from ott.problems.linear import barycenter_problem
    from ott.solvers.linear import continuous_barycenter, sinkhorn

    inputs = bc.pad_inputs(mixtures)
    m, k = inputs.weights.shape
    y = jnp.concatenate([inputs.means, inputs.covs.reshape(m, k, 4)], -1)
    solver = continuous_barycenter.FreeWassersteinBarycenter(sinkhorn.Sinkhorn())
    x_init = jnp.concatenate([jnp.asarray(means), jnp.asarray(covs).reshape(-1, 4)], -1)

    @jax.jit
    def go(y, b, w, x_init):
        prob = barycenter_problem.FreeBarycenterProblem(
            y=y, b=b, weights=w, cost_fn=costs.Bures(dimension=2), epsilon=eps
        )
        out = solver(prob, bar_size=x_init.shape[0], x_init=x_init)
        return out.x, out.costs

    (x, costs_), secs = best_of(go, y, inputs.weights, jnp.asarray(lambdas), x_init)
    n = int(np.sum(np.asarray(costs_) != -1))
    return np.asarray(x[:, :2]), np.asarray(costs_)[:n], secs


def cases():
    ref = json.loads(REF.read_text())
    mixtures = [
        GMM(*(jnp.asarray(g[k], jnp.float32) for k in ("weights", "means", "covs")))
        for g in ref["input_gmms"]
    ]
    yield (
        "notebook (3 inputs, bar_size 6)",
        mixtures,
        ref["barycentric_weights"],
        0.1,
        ref["x_init_means"],
        ref["x_init_covs"],
    )
    centers = [(40 * np.cos(a), 40 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 9)[:8]]
    mixtures, lam = synthetic.random_mixtures(
        3, (10,) * 8, tuple(centers), (4.0,) * 8, mean_spreads=(4.0,) * 8
    )
    rng = np.random.default_rng(0)
    means = rng.normal(size=(50, 2)) * 10
    covs = np.tile(np.eye(2) * 4.0, (50, 1, 1))
    yield "8 inputs x 10 components, bar_size 50", mixtures, lam, 0.1, means, covs


def main() -> None:
    rows = []
    for name, mixtures, lam, eps, means, covs in cases():
        _, their_costs, ott_s = ott(mixtures, lam, eps, means, covs)
        for mode, cfg in MODES.items():
            out, secs, compile_s = ours(mixtures, lam, eps, means, covs, cfg)
            n = int(out.iteration)
            ours_costs = np.asarray(out.costs)[:n]
            same = n == len(their_costs)
            cost_diff = (
                float(np.max(np.abs(ours_costs - their_costs) / np.abs(their_costs)))
                if same
                else None
            )
            row = {
                "bench": "barycenter",
                "case": f"{name} {mode}",
                "ours_s": round(secs, 4),
                "compile_s": round(compile_s, 2),
                "peer": "ott",
                "peer_s": round(ott_s, 4),
                "ratio": round(ott_s / secs, 1),
                "iterations": n,
                "peer_iterations": len(their_costs),
                "max_rel_cost_diff": cost_diff,
            }
            rows.append(row)
            print(
                f"{row['case']:<48} ours {secs:.4f} s (compile {compile_s:.2f} s)  "
                f"ott {ott_s:.4f} s  ratio {row['ratio']}  iters {n}/{len(their_costs)}"
            )
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
