"""The shapes a user reaches after the first visit, compiled into JAX's persistent cache
by a child of the server (``python -m gmmot.warm_more SERVER_PID``, started by
:mod:`gmmot.warmup`): coupled EM for K = 2..8 (one program per K: zero-weight components
would put log 0 in the E-step and zero marginals in Sinkhorn, so K is not padded), the W2
fit a first visit prepares (one program for every K), every Dirac descent bucket up to
5,000 on the 64^2 targets, the default N on the other image grids (the mixtures' 128^2,
a small picture's 256^2, a photo's 512^2), every bucket on a photo's grid, then that W2
fit's other K (each K's own EM and kmeans++ start), then every bucket on the 128^2 and
256^2 grids. The server then reads each from the cache on first use (its tracing only)
instead of compiling it.
The child stops when the server is gone, and drops each executable once it is cached
(each keeps thousands of memory maps)."""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
import threading
import time

import jax

from gmmot.jax_cache import CACHE_DIR  # the same persistent cache as the server
from gmmot.models import DataSource
from gmmot_core.buckets import IMAGE_SIDES, bucket, buckets_up_to
from gmmot_core.targets import MAX_SIDE
from gmmot_runs.coupled_em import CoupledEMRun
from gmmot_runs.coupled_em_spec import Structure
from gmmot_runs.descent import MAX_DIRACS, DescentRun, DescentSettings
from gmmot_runs.w2_fit import BOUNDS, DEFAULTS, W2FitRun

MORE_K = (2, 4, 5, 6, 8, 7)  # cheap first (~3-8 s each on 2 cores), then the Dirac buckets
# (image grid side, N): every Dirac bucket up to MAX_DIRACS on the 64^2 targets but the
# default N = 200's (compiled at start), small first (~5-25 s each); the default N on the
# other grids a screen reaches (image_grid: mixtures 128^2, an upload at most MAX_SIDE
# per side); then every bucket on a photo's grid. The 128^2 and 256^2 buckets come last.
_DEFAULT_N = DescentSettings().n
_NS = tuple(  # every bucket but the default N's
    min(b, MAX_DIRACS) for b in buckets_up_to(MAX_DIRACS) if b != bucket(_DEFAULT_N)
)
_OTHER_SIDES = tuple(s for s in IMAGE_SIDES if 64 < s <= MAX_SIDE)
MORE_DIRACS = (
    tuple((64, n) for n in _NS)
    + tuple((side, _DEFAULT_N) for side in reversed(_OTHER_SIDES))
    + tuple((MAX_SIDE, n) for n in _NS)
)
LAST_DIRACS = tuple((side, n) for side in _OTHER_SIDES[:-1] for n in _NS)
# the W2 tab's first fit (its program serves every K: ~45 s), then, after the Diracs, its
# other K (~15 s each: EM, the kmeans++ start and the log-density are compiled per K)
W2_KS = tuple(range(BOUNDS["k"][0], BOUNDS["k"][1] + 1))

LOG = logging.getLogger("gmmot.warmup")


def warm_more(
    server_pid: int | None = None,
    ks=MORE_K,
    diracs=MORE_DIRACS,
    w2_ks=W2_KS,
    last_diracs=LAST_DIRACS,
) -> int:
    """Compile each case (until the server ``server_pid`` is gone); how many were done.
    ``diracs``: descents of ``(image side, N)``; ``w2_ks``: the W2 tab's fit at these K
    (its default K first, the others after ``diracs``); ``last_diracs``: after those."""
    t0, done = time.perf_counter(), 0
    clouds = DataSource().clouds()
    first = [k for k in w2_ks if k == DEFAULTS["k"]]
    cases = [("coupled EM K", k) for k in ks] + [("W2 fit K", k) for k in first]
    cases += [("Diracs (side, N)", d) for d in diracs]
    cases += [("W2 fit K", k) for k in w2_ks if k != DEFAULTS["k"]]
    cases += [("Diracs (side, N)", d) for d in last_diracs]
    for name, value in cases:
        if server_pid is not None and os.getppid() != server_pid:
            break
        if name == "coupled EM K":
            CoupledEMRun(*clouds, structure=Structure(k=value)).step()
        elif name == "W2 fit K":
            d = DEFAULTS
            cloud = {"preset": d["preset"], "n": d["n"], "seed": d["seed"]}
            W2FitRun(cloud, value, d["res"], d["seed"]).step()
        else:
            side, n = value
            DescentRun({"preset": "tutorial two peaks", "res": side}, n=n).step()
        jax.clear_caches()
        done += 1
        LOG.info("warm-up: %s = %s cached (%.0f s)", name, value, time.perf_counter() - t0)
    return done


def start() -> subprocess.Popen | None:
    """This module in a child process at nice 10 (a process of its own keeps its memory
    maps and CPU time off the server, which reads what it caches), unless
    ``GMMOT_WARM_MORE=0`` or the cache is off (then it would serve nobody)."""
    if os.environ.get("GMMOT_WARM_MORE", "1") == "0" or CACHE_DIR == "off":
        return None
    # nice execs the child, so the server stays its parent (the child checks)
    cmd = ["nice", "-n", "10", sys.executable, "-m", "gmmot.warm_more", str(os.getpid())]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child = subprocess.Popen(cmd, cwd=root)
    # reaped when it ends (it stayed a zombie until the server exited), and stopped with
    # the server (it only checks between cases, which take up to ~40 s)
    threading.Thread(target=child.wait, daemon=True, name="gmmot-warm-more-reaper").start()
    atexit.register(_stop, child)
    return child


def _stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.terminate()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    warm_more(int(sys.argv[1]) if len(sys.argv) > 1 else None)
