"""``panel serve`` of the app for the browser benchmarks, started like the quick start."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def serve(log: Path | None = None) -> tuple[subprocess.Popen, str]:
    """Start the server (warm-up included, ~2 min cold) and return it with the page URL.

    The command of ``gmmot serve`` and ``bash .ci/dev serve``: sessions whose tab closed
    (or that no tab has connected to yet) are reaped after 60 s, checked every 5 s. The
    server's output goes to ``log`` (or nowhere)."""
    sys.path.insert(0, str(ROOT))
    from gmmot.serve import serve_command

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = serve_command(port, "127.0.0.1", [])
    out = log.open("w") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + 600  # the warm-up compiles the core first (~2 min)
    while time.time() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/liveness", timeout=2)
            return proc, f"http://127.0.0.1:{port}/main"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("panel serve did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def measure_pages(measure, sizes: list[int]) -> list[dict]:
    """Serve the app, open one chromium page per size, ``measure(page, url, n)`` on it,
    print the JSON lines and return them (the server is stopped in any case)."""
    import json

    from playwright.sync_api import sync_playwright

    proc, url = serve()
    rows = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for n in sizes:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                rows.append(measure(page, url, n))
                page.close()
            browser.close()
    finally:
        stop(proc)
    for row in rows:
        print(json.dumps(row))
    return rows


def rate_and_pause(page, count, window_s: float) -> tuple[float, float]:
    """What ``count(page)`` (a counter the page shows) gains per second over ``window_s``
    while playing, then how long a Pause click takes to be answered (Play is back)."""
    import re

    c0, t0 = count(page), time.perf_counter()
    page.wait_for_timeout(window_s * 1000)
    c1, t1 = count(page), time.perf_counter()
    t = time.perf_counter()
    page.get_by_role("button", name=re.compile("Pause")).click()
    page.get_by_role("button", name=re.compile("Play")).wait_for(timeout=30_000)
    return (c1 - c0) / (t1 - t0), time.perf_counter() - t
