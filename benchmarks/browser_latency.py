"""Time from a change to the first frame that shows it, in chromium against the real
``panel serve`` (started like the quick start, on a fresh persistent cache).

Case: on the Dirac descent tab (tutorial target, 64^2), type N and press Enter. The
clock stops when the status line reads ``N <n> · W2² <value>``, and that value must
equal W2² of the same run computed headless (:class:`~gmmot_runs.descent.DescentRun`,
same target, init and seed, to the 6 digits shown): a new frame alone does not count.
Each N is timed cold (its first use on this server) and warm (its second use, after
another N). ``--no-child`` turns the background warm-up off (``GMMOT_WARM_MORE=0``):
every cold case is then a compile; by default the cold cases run after the child has
filled the cache (a cache read). There is no peer: ``peer`` = ``goal`` (20 s cold,
1 s warm) and ``ratio`` = goal / ours, 1 or more meets it.

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

GOAL = {"cold": 20.0, "warm": 1.0}


def _expected_w2(n: int) -> float:
    from gmmot_runs.descent import DescentRun

    return DescentRun({"preset": "tutorial two peaks", "res": 64}, n=n).w2[0]


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

    import app.jax_cache  # noqa: F401  (this process reads the same cache)

    log = Path(tempfile.mkdtemp()) / "server.log"
    proc, url = serve(log)
    rows = []
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
            order = [(n, "cold") for n in ns] + [(n, "warm") for n in ns]
            for n, kind in order:
                if kind == "warm":  # leave the value first, so that n is a change again
                    box.fill("200")
                    box.press("Enter")
                    page.wait_for_selector("text=N 200 ·", timeout=120_000)
                box.fill(str(n))
                t = time.perf_counter()
                box.press("Enter")
                page.wait_for_selector(f"text=N {n} ·", timeout=600_000)
                secs = time.perf_counter() - t
                shown = float(re.search(r"W2² ([0-9.e+-]+)", status.inner_text()).group(1))
                want = _expected_w2(n)
                ok = abs(shown - want) <= 1e-5 * abs(want)
                print(f"N={n} {kind}: {secs:.1f} s, W2² {shown} (headless {want:.6g}, ok={ok})")
                rows.append({
                    "bench": "browser_latency",
                    "case": f"descent N={n} 64^2 {kind}" + ("" if child else " (no child)"),
                    "ours_s": round(secs, 2), "peer": "goal", "peer_s": GOAL[kind],
                    "ratio": round(GOAL[kind] / secs, 2), "numbers_ok": ok,
                })  # fmt: skip
            browser.close()
    finally:
        stop(proc)
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
