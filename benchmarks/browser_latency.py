"""Time from a change to the first frame that shows it, in chromium against the real
``panel serve`` (started like the quick start, on a fresh persistent cache).

Cases, on the Dirac descent tab: type N and press Enter on the tutorial target (64^2);
then upload a 512 x 341 photo (a PNG: the stippling journey) and type N on it (512^2
grid). The clock stops when the status line reads ``N <n> · W2² <value>`` with the value
of the same run computed headless (:class:`~gmmot_runs.descent.DescentRun`, same target,
init and seed, to the 6 digits shown): a new frame alone does not count. Each N is timed
cold (its first use on this server) and warm (its second use, after another N).
``--no-child`` turns the background warm-up off (``GMMOT_WARM_MORE=0``): every cold case
is then a compile; by default the cold cases run after the child has cached the photo
grid's buckets (a cache read). There is no peer: ``peer`` = ``goal`` (3 s cold, 1 s warm
up to N = 2000, 2 s above) and ``ratio`` = goal / ours, 1 or more meets it.

    python benchmarks/browser_latency.py [--no-child] [N ...]   # default N: 500 1000 2000
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from served import CHROMIUM_ARGS, serve, stop  # noqa: E402

GOAL = {"cold": 3.0, "warm": 1.0, "warm N > 2000": 2.0}
TUTORIAL = {"preset": "tutorial two peaks", "res": 64}


def _photo_png(
    path: Path, height: int = 341, blobs=((0.3, 0.3, 0.06), (0.7, 0.4, 0.1), (0.5, 0.15, 0.04))
) -> Path:
    """A 512 x ``height`` grey PNG with a photo's shading and dark ``blobs`` (centre x, y
    and radius, in units of the width)."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:height, 0:512] / 512.0
    v = 0.2 + 0.3 * x * y
    for cx, cy, r in blobs:
        v += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
    Image.fromarray((255 * (1 - v / v.max())).astype(np.uint8), "L").save(path)
    return path


def _expected_w2(n: int, values=None) -> float:
    """W2^2 at step 0 of the run the screen starts (tutorial, or the photo's values)."""
    from gmmot_runs.descent import DescentRun

    target = TUTORIAL if values is None else {"values": None}
    return DescentRun(target, n, "random", 0, values).w2[0]


def _wait_w2(status, n: int, want: float, t0: float, timeout: float = 600) -> float:
    """Seconds from ``t0`` until the status line shows N ``n`` and W2² ``want`` (6 digits)."""
    deadline = t0 + timeout
    while time.perf_counter() < deadline:
        m = re.search(r"N (\d+) · W2² ([0-9.e+-]+)", status.inner_text())
        if m and int(m.group(1)) == n and abs(float(m.group(2)) - want) <= 1e-5 * abs(want):
            return time.perf_counter() - t0
        time.sleep(0.05)
    raise TimeoutError(f"N = {n}, W2² {want:.6g} not shown within {timeout} s")


def _wait_for_child(log: Path, last: str, timeout: float = 1800) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and last not in log.read_text():
        time.sleep(2)


def main() -> None:
    child = "--no-child" not in sys.argv
    ns = [int(a) for a in sys.argv[1:] if a.isdigit()] or [500, 1000, 2000]
    cache = tempfile.mkdtemp(prefix="gmmot-jax-")
    os.environ["GMMOT_JAX_CACHE"] = cache  # fresh: the server and this process share it
    os.environ["GMMOT_WARM_MORE"] = "1" if child else "0"
    from playwright.sync_api import sync_playwright

    import gmmot.jax_cache  # noqa: F401  (this process reads the same cache)

    log = Path(tempfile.mkdtemp()) / "server.log"
    proc, url = serve(log)
    rows = []
    png = _photo_png(Path(tempfile.mkdtemp()) / "photo.png")
    from gmmot_core.targets import image_from_bytes, with_floor

    photo = with_floor(image_from_bytes(png.read_bytes()))

    def record(case: str, kind: str, n: int, secs: float) -> None:
        goal = GOAL["warm N > 2000" if kind == "warm" and n > 2000 else kind]
        print(f"{case} {kind}: {secs:.1f} s", flush=True)
        rows.append({
            "bench": "browser_latency", "case": f"{case} {kind}" + ("" if child else " (no child)"),
            "ours_s": round(secs, 2), "peer": "goal", "peer_s": goal,
            "ratio": round(goal / secs, 2),
        })  # fmt: skip

    try:
        if child:
            _wait_for_child(log, "Diracs (side, N) = (512, 5000) cached")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url, timeout=120_000)
            page.get_by_text("Dirac descent", exact=True).first.click()
            page.wait_for_selector("text=N 200 ·", timeout=120_000)
            box = page.locator(".bk-input-group", has_text="Diracs N").locator("input").first
            status = page.get_by_text(re.compile(r"N \d+ · W2²")).first

            def n_cases(where: str, values) -> None:
                for n, kind in [(n, "cold") for n in ns] + [(n, "warm") for n in ns]:
                    if kind == "warm":  # leave the value first, so that n is a change again
                        box.fill("200")
                        box.press("Enter")
                        _wait_w2(status, 200, _expected_w2(200, values), time.perf_counter())
                    want = _expected_w2(n, values)
                    box.fill(str(n))
                    t0 = time.perf_counter()
                    box.press("Enter")
                    record(f"descent N={n} {where}", kind, n, _wait_w2(status, n, want, t0))

            n_cases("64^2", None)
            box.fill("200")
            box.press("Enter")
            _wait_w2(status, 200, _expected_w2(200), time.perf_counter())
            want = _expected_w2(200, photo)
            t0 = time.perf_counter()
            page.locator("input[type=file]").nth(2).set_input_files(str(png))
            record("upload a 512x341 photo, N=200", "cold", 200, _wait_w2(status, 200, want, t0))
            n_cases("photo 512^2", photo)
            browser.close()
    finally:
        stop(proc)
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
