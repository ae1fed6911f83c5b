"""Coupled EM frame time vs N on the default JAX device (e.g. a GPU), checked against CPU.

One frame = one EM iteration (E-step on both clouds + 20 Adam steps with warm-started
Sinkhorn), the app's animation unit. For each N the same 5 frames also run on the CPU
backend of the same machine; ``max_trace_diff`` compares the traced objectives (float32
round-off of sums over N points). Ends with one JSON line per case.

Usage: python benchmarks/coupled_em_scaling.py [N ...]
"""

from __future__ import annotations

import json
import sys
import time

import jax
import numpy as np

from gmmot_core import coupled_em as ce
from gmmot_core import fit_em, kmeans_pp, synthetic


def frames(device, x0, x1, n_frames=5):
    with jax.default_device(device):
        pooled = jax.numpy.asarray(np.concatenate([x0[:20000], x1[:20000]]))
        init = fit_em(kmeans_pp(jax.random.key(0), pooled, 3), pooled, steps=20)
        cfg = ce.CoupledEMConfig(em_steps=1, m_steps=20, trace_length=16)
        data = ce.PairData.make(x0, x1)
        state = ce.init(init, init, ce.Knobs.make(tau=1 / 1.01, weight_transport=0.1), cfg)
        run = jax.jit(ce.run, static_argnames="config")
        t = time.perf_counter()
        state = jax.block_until_ready(run(state, data, cfg))
        first = time.perf_counter() - t
        times = []
        for _ in range(n_frames):
            t = time.perf_counter()
            state = jax.block_until_ready(run(state, data, cfg))
            times.append(time.perf_counter() - t)
        return np.median(times), first, np.asarray(state.traces.objective[: n_frames + 1])


def main() -> None:
    sizes = [int(float(a)) for a in sys.argv[1:]] or [10**4, 10**5, 10**6, 10**7]
    dev = jax.devices()[0]
    cpu = jax.devices("cpu")[0]
    print(f"default device: {dev} ({dev.platform}); reference: {cpu}")
    rows = []
    for n in sizes:
        x0, x1 = synthetic.demo_pair(n, seed=0)
        t_dev, first, tr_dev = frames(dev, x0, x1)
        t_cpu, _, tr_cpu = frames(cpu, x0, x1) if n <= 10**6 else (None, None, None)
        row = {
            "bench": "coupled_em_frame",
            "case": f"N=1e{int(np.log10(n))} per cloud",
            "device": dev.platform,
            "ours_s": round(float(t_dev), 5),
            "first_call_s": round(first, 2),
            "peer": "same code on cpu",
            "peer_s": None if t_cpu is None else round(float(t_cpu), 5),
            "ratio": None if t_cpu is None else round(float(t_cpu / t_dev), 1),
            "max_trace_diff": None
            if tr_cpu is None
            else float(f"{np.abs(tr_dev - tr_cpu).max():.2e}"),
        }
        rows.append(row)
        print(row)
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
