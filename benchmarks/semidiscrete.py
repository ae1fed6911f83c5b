"""Exact semi-discrete OT: ours vs sdot (numpy path), float64, same inputs.

Cases: one Lloyd step with warm weights at N=200 on the tutorial's 64x64 target, and a
cold solve (Voronoi start, max |m - nu| <= 1e-8) at N = 1000 and 5000 on the 64x64
target and on a 256x256 one (the same image upsampled 4x4 per pixel); then the same at
N = 4000 on images whose mass sits on part of the box with sharp edges (a disk on 64x64,
an annulus and a bar on 128x128, empty pixels at the upload floor, 1e-9 of the mean),
where blending with the uniform density stalled. Diracs uniform in [0,1]^2 (seed 1).
sdot runs in a Python 3.12 venv (``SDOT_PYTHON``, else ``benchmarks/.sdot-venv`` created
with pyenv's 3.12 and ``pip install sdot jax``); if it cannot be set up the peer column is
skipped with the reason printed.

Ours: warm = compiled for the shape before timing (compile time printed separately);
best of ``REPEATS``. Ends with one JSON line per case.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from gmmot_core._xla_flags import peer_environ  # noqa: E402
from gmmot_core.semidiscrete.density import image_density  # noqa: E402
from gmmot_core.semidiscrete.descent import descend, descent_init  # noqa: E402
from gmmot_core.semidiscrete.newton import solve_weights  # noqa: E402
from gmmot_core.targets import with_floor  # noqa: E402

HERE = Path(__file__).resolve().parent
REFERENCE = HERE.parent / "tests" / "reference" / "semidiscrete"
REPEATS = 3

PEER = r"""
import json, sys, time
import numpy as np
from sdot import OtProblem, SumOfDiracs, Iterative
from sdot.distributions.Image import Image
case, n, res, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
img = np.load(target)
if res != img.shape[0]:
    img = np.kron(img, np.ones((res // img.shape[0], res // img.shape[0])))
image = Image(img)
if case == "lloyd":
    y = np.load(sys.argv[5])
else:
    y = np.random.default_rng(1).random((n, 2))
best = float("inf")
for _ in range(3):
    pb = OtProblem(SumOfDiracs(y), image)
    t = time.perf_counter()
    sol = pb.solve(Iterative(tol=1e-8))
    cold = time.perf_counter() - t
    if case == "lloyd":
        b = np.asarray(sol.barycenters)
        t = time.perf_counter()
        pb.source = SumOfDiracs(b)
        sol = pb.solve(Iterative(tol=1e-8))
        np.asarray(sol.barycenters)
        best = min(best, time.perf_counter() - t)
    else:
        best = min(best, cold)
print(json.dumps({"seconds": best}))
"""


def _sdot_python() -> tuple[str | None, str]:
    if os.environ.get("SDOT_PYTHON"):
        return os.environ["SDOT_PYTHON"], ""
    venv = HERE / ".sdot-venv"
    py = venv / "bin" / "python"
    if py.exists():
        return str(py), ""
    # pyenv's interpreter itself (its python3.12 shim fails unless 3.12 is selected)
    found = sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python"))
    base = str(found[-1]) if found else shutil.which("python3.12")
    if base is None:
        return None, "no Python 3.12 found for sdot"
    try:
        subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "sdot", "jax"],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except (subprocess.SubprocessError, OSError) as e:
        return None, f"could not set up sdot in a 3.12 venv: {e}"
    return str(py), ""


def _peer(py, case, n, res, extra=(), target=REFERENCE / "target.npy"):
    out = subprocess.run(
        [py, "-c", PEER, case, str(n), str(res), str(target), *extra],
        capture_output=True,
        text=True,
        timeout=1200,
        env=peer_environ(),  # sdot's own jaxlib, with its default XLA flags
    )
    if out.returncode != 0:
        return None, out.stderr.strip().splitlines()[-1] if out.stderr else "failed"
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"], ""


def _density(res):
    img = np.load(REFERENCE / "target.npy")
    if res != img.shape[0]:
        img = np.kron(img, np.ones((res // img.shape[0], res // img.shape[0])))
    return image_density(img)


def support_limited(name: str) -> np.ndarray:
    """``disk`` (64^2) or ``annulus`` (128^2, with a bar) on the upload floor."""
    res = 64 if name == "disk" else 128
    t = (np.arange(res) + 0.5) / res
    x, y = np.meshgrid(t, t, indexing="ij")
    if name == "disk":
        values = (x - 0.5) ** 2 + (y - 0.45) ** 2 < 0.3**2
    else:
        r = np.hypot(x - 0.5, y - 0.5)
        values = ((r < 0.4) & (r > 0.25)) + 0.5 * ((x > 0.1) & (x < 0.2))
    return with_floor(np.asarray(values, np.float64))


def _best(fn):
    best = float("inf")
    for _ in range(REPEATS):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_lloyd():
    dens = _density(64)
    y0 = jnp.asarray(np.load(REFERENCE / "positions0.npy"))
    nu = jnp.full(200, 1 / 200)
    state, sizes = descent_init(y0, dens, nu)
    t = time.perf_counter()
    jax.block_until_ready(descend(state, dens, nu, 0.0, True, 1, sizes)[1])
    compile_s = time.perf_counter() - t
    ours = _best(lambda: jax.block_until_ready(descend(state, dens, nu, 0.0, True, 1, sizes)[1]))
    return ours, compile_s


def bench_cold(n, res, values=None):
    dens = _density(res) if values is None else image_density(values)
    y = jnp.asarray(np.random.default_rng(1).random((n, 2)))
    nu = jnp.full(n, 1 / n)
    t = time.perf_counter()
    r = solve_weights(y, nu, dens)
    jax.block_until_ready(r.weights)
    first = time.perf_counter() - t
    sizes = r.sizes
    status = int(r.status)
    ours = _best(lambda: jax.block_until_ready(solve_weights(y, nu, dens, sizes=sizes).weights))
    return ours, first, status, int(r.iterations)


def _cold_row(py, n, res, case, values=None):
    """Ours and sdot's cold solve on the tutorial target (or ``values``, saved for sdot)."""
    ours, first, status, its = bench_cold(n, res, values)
    peer_s = None
    if py:
        with tempfile.TemporaryDirectory() as tmp:
            target = REFERENCE / "target.npy"
            if values is not None:
                target = Path(tmp) / "target.npy"
                np.save(target, values)
            peer_s, err = _peer(py, "cold", n, res, target=target)
        if err:
            print(f"sdot cold {case} failed:", err)
    print(
        f"cold solve {case}: ours {ours:.3f} s ({its} Newton steps, status {status}; "
        f"first call incl. compile and size growth {first:.1f} s)"
    )
    return ("cold_solve", case, ours, peer_s)


def main():
    py, why = _sdot_python()
    if py is None:
        print(f"peer skipped: {why}")
    rows = []
    ours, compile_s = bench_lloyd()
    peer_s = None
    if py:
        peer_s, err = _peer(py, "lloyd", 200, 64, (str(REFERENCE / "positions0.npy"),))
        if err:
            print("sdot lloyd failed:", err)
    print(f"Lloyd step warm N=200 64^2: ours {ours * 1e3:.1f} ms (compile {compile_s:.1f} s)")
    rows.append(("lloyd_warm", "N=200 64^2", ours, peer_s))
    for res in (64, 256):
        for n in (1000, 5000):
            rows.append(_cold_row(py, n, res, f"N={n} {res}^2"))
    for name in ("disk", "annulus"):
        values = support_limited(name)
        res = values.shape[0]
        rows.append(_cold_row(py, 4000, res, f"N=4000 {name} {res}^2", values))
    for name, case, ours, peer_s in rows:
        line = {"bench": f"semidiscrete_{name}", "case": case, "ours_s": round(ours, 5)}
        line |= {"peer": "sdot", "peer_s": None if peer_s is None else round(peer_s, 5)}
        line["ratio"] = None if peer_s is None else round(peer_s / ours, 2)
        print(json.dumps(line))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
