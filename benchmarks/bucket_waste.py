"""What a shape bucket's padding costs per step: a warm Lloyd step of N Diracs padded to
``bucket(N)`` rows (inert Diracs, mass 0) against the same step unpadded, on the
tutorial's 64^2 target, float64, median of 6 after 3 warm steps. There is no peer for
padding: ``peer`` = ``unpadded`` and ``ratio`` = unpadded / padded (below 1: padding costs).

    python benchmarks/bucket_waste.py
"""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from gmmot_core.buckets import bucket, pad_diracs  # noqa: E402
from gmmot_core.semidiscrete.density import image_density  # noqa: E402
from gmmot_core.semidiscrete.descent import descend, descent_init  # noqa: E402
from gmmot_core.targets import tutorial_image  # noqa: E402


def _step_time(y, nu, density) -> float:
    y, nu = jnp.asarray(y), jnp.asarray(nu)
    s, sizes = descent_init(y, density, nu)
    s, _, sizes, _ = descend(s, density, nu, 0.0, True, 3, sizes, length=10)
    times = []
    for _ in range(6):
        t = time.perf_counter()
        out, _, sizes, _ = descend(s, density, nu, 0.0, True, 1, sizes, length=10)
        jax.block_until_ready(out.w2)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    density = image_density(tutorial_image(64))
    rows = []
    for n in (200, 500, 1000, 2000):
        y = np.random.default_rng(1).random((n, 2))
        nu = np.full(n, 1.0 / n)
        plain = _step_time(y, nu, density)
        padded = _step_time(*pad_diracs(y, nu, bucket(n)), density)
        print(f"N={n} in {bucket(n)}: padded {padded * 1e3:.1f} ms, unpadded {plain * 1e3:.1f} ms")
        jax.clear_caches()  # each program keeps ~10,000 memory maps (65,530 per process)
        rows.append({
            "bench": "bucket_waste", "case": f"Lloyd step N={n} in {bucket(n)}",
            "ours_s": round(padded, 4), "peer": "unpadded", "peer_s": round(plain, 4),
            "ratio": round(plain / padded, 2),
        })  # fmt: skip
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
