"""What the grid a target is held in costs a descent run: each picture in the grid the
runs use (:func:`gmmot_core.buckets.image_grid`, a square of its longer side's class) and
in the rectangular grids of before (each side rounded up to 32, 64, 96, 128, 192, 256,
384, 512, 768 or 1024: a hundred grids, so a hundred programs per Dirac bucket); the
tutorial's 64^2 also one class up, in 128^2. Per case: the cold solve (a run's reset,
compiled already) and the median warm Lloyd step (steps 4-9). There is no peer for
padding: ``peer`` = the other grid, ``ratio`` = its time / ours (below 1: ours costs).

    python benchmarks/image_grids.py [N ...]
"""

from __future__ import annotations

import json
import sys
import time

import jax
import numpy as np

import gmmot_runs.descent as descent_runs
from gmmot_core.buckets import image_grid
from gmmot_core.targets import tutorial_image

OLD_SIDES = (32, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


def rectangular_grid(shape) -> tuple[int, int]:
    """The grids of before: each side rounded up to ``OLD_SIDES``."""
    return tuple(next((s for s in OLD_SIDES if s >= n), n) for n in shape)


def _photo(shape) -> np.ndarray:
    """A photo-like target: smooth shading plus a few dark blobs, ``shape`` pixels."""
    w, h = shape
    x, y = np.meshgrid(np.linspace(0, 1, w), np.linspace(0, 1, h), indexing="ij")
    v = 0.2 + 0.3 * x * y
    for cx, cy, s in ((0.3, 0.4, 0.08), (0.7, 0.6, 0.12), (0.5, 0.2, 0.05)):
        v += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
    return v


def _times(values, n: int, grid) -> tuple[float, float]:
    """(cold solve s, median warm Lloyd step s) of a run on ``values`` held in ``grid``."""
    descent_runs.image_grid = grid
    try:
        run = descent_runs.DescentRun({"values": values.tolist()}, n=n, values=values)
        t = time.perf_counter()
        run.reset()
        cold = time.perf_counter() - t
        steps = []
        for _ in range(10):
            t = time.perf_counter()
            run.step()
            steps.append(time.perf_counter() - t)
    finally:
        descent_runs.image_grid = image_grid
        jax.clear_caches()  # each program keeps thousands of memory maps
    return cold, float(np.median(steps[4:]))


def main(ns=(200, 2000)) -> None:
    one_up = lambda shape: (128, 128)  # noqa: E731
    cases = [
        ("photo 512x341", _photo((512, 341)), image_grid, rectangular_grid),
        ("photo 200x150", _photo((200, 150)), image_grid, rectangular_grid),
        ("photo 90x120", _photo((90, 120)), image_grid, rectangular_grid),
        ("tutorial 64x64", tutorial_image(64), one_up, image_grid),
    ]
    rows = []
    for n in ns:
        for name, values, ours, peer in cases:
            grids = ours(values.shape), peer(values.shape)
            (cold, step), (peer_cold, peer_step) = (_times(values, n, g) for g in (ours, peer))
            case = f"{name} in {grids[0]} (peer: {grids[1]}), N={n}"
            print(f"{case}: cold {cold:.3f} vs {peer_cold:.3f} s, step {step * 1e3:.1f} vs "
                  f"{peer_step * 1e3:.1f} ms", flush=True)  # fmt: skip
            for what, t, p in (("cold solve", cold, peer_cold), ("Lloyd step", step, peer_step)):
                rows.append({
                    "bench": "image_grids", "case": f"{what}: {case}", "ours_s": round(t, 4),
                    "peer": f"grid {grids[1]}", "peer_s": round(p, 4), "ratio": round(p / t, 2),
                })  # fmt: skip
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or (200, 2000))
