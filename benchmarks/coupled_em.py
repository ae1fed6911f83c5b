"""Coupled EM: gmmot_core vs OTT-JAX 0.6.0 ``fit_gmm_pair`` on the same data and initial mixture.

Setup: the demo generators of the coupled-GMM notebook, N points per cloud, the initial
mixture for both sides = kmeans++ + 20 EM steps on the pooled clouds (K=3), then
``EM`` iterations x 20 Adam steps with the reference knobs (unbalanced: eps=0.01, rho=1,
weight_transport=0.1; balanced: eps=0.01, weight_transport=0.01). Both sides are timed
warm (second call, ``block_until_ready``). Ours runs in two modes: ``exact`` (Sinkhorn
cold-started like OTT: same path, same numbers) and ``fast`` (the app's default:
warm-started, Newton when balanced, so balanced runs converge where OTT's 2000-sweep cap
stops early and their numbers then differ from OTT's). ``max_trace_diff`` compares
OTT's verbose trace (printed to 3 decimals, so +-5e-4 is resolution) with ours;
``loss_diff`` compares the final objectives exactly.

Usage: python benchmarks/coupled_em.py [--quick]   (ends with one JSON line per case)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from gmmot_core import coupled_em as ce
from gmmot_core import fit_em, kmeans_pp, synthetic

SETUPS = {
    "unbalanced": dict(epsilon=0.01, tau=1.0 / 1.01, weight_transport=0.1),
    "balanced": dict(epsilon=0.01, tau=1.0, weight_transport=0.01),
}


def timed(fn, *args, repeat: int = 1):
    best = np.inf
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return out, best


def initial_mixture(x0, x1, k=3):
    pooled = jnp.asarray(np.concatenate([x0, x1]))
    return jax.jit(lambda p: fit_em(kmeans_pp(jax.random.key(0), p, k), p, steps=20))(pooled)


def run_ours(init, x0, x1, knobs, em_steps, m_steps, warm_start):
    cfg = ce.CoupledEMConfig(
        em_steps=em_steps,
        m_steps=m_steps,
        solver="auto" if warm_start else "sinkhorn",
        warm_start=warm_start,
        trace_length=em_steps + 1,
    )
    data = ce.PairData.make(x0, x1)
    state = ce.init(init, init, ce.Knobs.make(**knobs), cfg)
    jitted = jax.jit(ce.run, static_argnames="config")
    t = time.perf_counter()
    compiled = jitted.lower(state, data, cfg).compile()
    compile_s = time.perf_counter() - t
    out, secs = timed(lambda s, d: compiled(s, d), state, data, repeat=2)
    one = cfg._replace(em_steps=1)
    nxt = jax.jit(ce.run, static_argnames="config")(out, data, one)
    loss = float(nxt.traces.objective[em_steps])
    return out, secs, compile_s, loss


def run_ott(init, x0, x1, knobs, em_steps, m_steps, verbose_trace: bool):
    from ott.tools.gaussian_mixture import fit_gmm_pair, gaussian_mixture, gaussian_mixture_pair

    g = gaussian_mixture.GaussianMixture.from_mean_cov_component_weights(
        init.means, init.covs, init.weights
    )
    pair = gaussian_mixture_pair.GaussianMixturePair(
        g, g, epsilon=knobs["epsilon"], tau=knobs["tau"]
    )
    fit = fit_gmm_pair.get_fit_model_em_fn(
        weight_transport=knobs["weight_transport"], learning_rate=1e-3, jit=True
    )
    p0, p1 = jnp.asarray(x0), jnp.asarray(x1)

    def call(verbose=False):
        _, loss = fit(pair, p0, p1, None, None, em_steps=em_steps, m_steps=m_steps, verbose=verbose)
        return loss

    call()  # compile
    loss, secs = timed(call)
    trace = None
    if verbose_trace:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            call(verbose=True)
        rows = re.findall(
            r"^\s*\d+ (\S+) (\S+) transport:(\S+) objective:(\S+)", buf.getvalue(), re.M
        )
        trace = np.array(rows, dtype=float)
    return float(loss), secs, trace


def ott_in_subprocess(setup: str, n: int, em: int, m: int, timeout: float):
    """Run the peer in a fresh process (OTT 0.6.0 deadlocked here at N=1e5 once)."""
    cmd = [sys.executable, __file__, "--ott-worker", json.dumps([setup, n, em, m])]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None, f"OTT did not finish within {timeout:.0f} s"
    except subprocess.CalledProcessError as exc:
        return None, f"OTT failed: {exc.stderr.strip().splitlines()[-1:]}"
    loss, secs, trace = json.loads(out.stdout.strip().splitlines()[-1])
    return (loss, secs, None if trace is None else np.asarray(trace)), None


def ott_worker(spec: str) -> None:
    setup, n, em, m = json.loads(spec)
    x0, x1 = synthetic.demo_pair(n, seed=0)
    init = initial_mixture(x0, x1)
    loss, secs, trace = run_ott(init, x0, x1, SETUPS[setup], em, m, n <= 10**4)
    print(json.dumps([loss, secs, None if trace is None else trace.tolist()]))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--ott-worker":
        ott_worker(sys.argv[2])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="N=1e3 and 1e4 only")
    ap.add_argument("--em-steps", type=int, default=10)
    ap.add_argument("--m-steps", type=int, default=20)
    ap.add_argument("--ott-timeout", type=float, default=300.0)
    args = ap.parse_args()
    em, m = args.em_steps, args.m_steps
    sizes = [10**3, 10**4] if args.quick else [10**3, 10**4, 10**5, 10**6]
    ott_max = 10**5
    results = []
    print(f"devices: {jax.devices()}  EM iterations: {em} x {m} Adam steps")
    for setup, knobs in SETUPS.items():
        for n in sizes:
            if setup == "balanced" and n != 10**4:
                continue
            x0, x1 = synthetic.demo_pair(n, seed=0)
            init = initial_mixture(x0, x1)
            ott, why = (
                ott_in_subprocess(setup, n, em, m, args.ott_timeout)
                if n <= ott_max
                else (None, "OTT not run above N=1e5 (minutes per run)")
            )
            for mode, warm in (("exact", False), ("fast", True)):
                out, secs, compile_s, loss = run_ours(init, x0, x1, knobs, em, m, warm)
                ours_tr = np.stack(
                    [
                        np.asarray(getattr(out.traces, k))[:em]
                        for k in ("q0", "q1", "transport", "objective")
                    ],
                    -1,
                )
                row = {
                    "bench": "coupled_em",
                    "case": f"{setup} N=1e{int(np.log10(n))} {mode}",
                    "ours_s": round(secs, 4),
                    "compile_s": round(compile_s, 2),
                    "ours_frame_ms": round(1000 * secs / em, 2),
                }
                if ott is not None:
                    ott_loss, ott_s, ott_trace = ott
                    row |= {
                        "peer": "ott",
                        "peer_s": round(ott_s, 4),
                        "ratio": round(ott_s / secs, 1),
                        "loss_diff": float(f"{abs(loss - ott_loss):.2e}"),
                    }
                    if ott_trace is not None:
                        row["max_trace_diff"] = float(
                            f"{np.abs(ours_tr - ott_trace[:em]).max():.2e}"
                        )
                else:
                    row |= {"peer": "ott", "peer_s": None, "ratio": None, "note": why}
                results.append(row)
                print(
                    f"{row['case']:<28} ours {secs:8.4f} s  ({row['ours_frame_ms']} ms/frame)"
                    f"  ott {row.get('peer_s')}  ratio {row.get('ratio')}"
                    f"  trace diff {row.get('max_trace_diff')}"
                )
    for row in results:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
