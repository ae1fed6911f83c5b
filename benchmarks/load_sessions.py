"""Load test: many browser sessions playing coupled EM at once on one server (loopback).

Starts ``panel serve`` like the quick start and opens S headless chromium contexts (one
browser session each, default S = 20) on the default page, which plays the demo pair at
once. Over a window of W seconds (default 60) every page records when each frame
arrives (``window.gmmotFrames``, stamped by the frame echo of the coupled-EM screen);
the frame latency is the time between two frames in one page, the wait a user sees,
including the server's EM step, the document patch and the browser's paint.

Server memory (RSS) is read at four points: idle after the warm-up; the baseline after
one session has played and closed (per-process caches are then filled); the peak during
the load; and after every context closed and the server reaped the sessions. The
server's CPU use over 10 s after that says whether any periodic callback still runs.
Errors are the log records with a traceback or ERROR, minus the known races of a tab
closing mid-frame (``tests/browser/conftest.py``), which are counted separately.

No peer (OTT and POT have no server). Usage:
``python benchmarks/load_sessions.py [SESSIONS] [WINDOW_S]``
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import sys
import threading
import time
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright
from served import CHROMIUM_ARGS, ROOT, serve, stop

LOG = ROOT / "test-artifacts" / "load-server.log"
REAP_S = 70.0  # sessions are reaped 60 s after their tab closes, checked every 5 s


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Sampler(threading.Thread):
    """RSS of the server once a second while the load runs."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.samples, self.done = pid, [], threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            self.samples.append(_rss_mb(self.pid))


def _open(browser, url: str):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.goto(url, timeout=600_000, wait_until="commit")  # a loaded server answers slowly
    return ctx, page


def _frames(page) -> int:
    try:  # the page may still be navigating
        return page.evaluate("(window.gmmotFrames || []).length")
    except PlaywrightError:
        return 0


def _wait_playing(page, frames: int = 3, timeout_s: float = 600) -> bool:
    """Whether the page showed ``frames`` frames within ``timeout_s``."""
    deadline = time.time() + timeout_s
    while _frames(page) < frames:
        if time.time() > deadline:
            return False
        page.wait_for_timeout(250)
    return True


def _log_errors(text: str) -> tuple[int, int]:
    """(errors, closed-tab races) among the server log's records."""
    spec = importlib.util.spec_from_file_location(
        "browser_conftest", ROOT / "tests" / "browser" / "conftest.py"
    )
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    records = [r for r in conftest.RECORD.split(text) if r.strip()]
    bad = [r for r in records if "Traceback" in r or re.search(r"\bERROR\b", r)]
    races = [r for r in bad if conftest._closed_tab_race(r)]
    return len(bad) - len(races), len(races)


def _say(text: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


def main() -> None:
    sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    window = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    LOG.parent.mkdir(exist_ok=True)
    proc, url = serve(LOG)
    pid = proc.pid
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            time.sleep(5)
            rss_idle = _rss_mb(pid)
            ctx, page = _open(browser, url)  # one session: fills the per-process caches
            if not _wait_playing(page):
                raise RuntimeError("the first session did not play")
            page.wait_for_timeout(10_000)
            ctx.close()
            time.sleep(REAP_S)
            rss_base = _rss_mb(pid)
            _say(f"baseline {rss_base:.0f} MB; opening {sessions} sessions")

            sampler = _Sampler(pid)
            sampler.start()
            t_open = time.perf_counter()
            opened = [_open(browser, url) for _ in range(sessions)]
            stalled = [i for i, (_, page) in enumerate(opened) if not _wait_playing(page, 3, 60)]
            ramp_s = time.perf_counter() - t_open
            _say(f"all open after {ramp_s:.0f} s, {len(stalled)} not playing; window {window} s")
            for i in stalled:  # what a user of a session that never played would see
                opened[i][1].screenshot(path=str(LOG.parent / f"load-stalled-{i}.png"))
            starts = [page.evaluate("performance.now()") for _, page in opened]
            opened[0][1].wait_for_timeout(window * 1000)
            ends = [page.evaluate("performance.now()") for _, page in opened]
            stamps = [page.evaluate("window.gmmotFrames || []") for _, page in opened]
            # how quickly a click answers under load: Pause on the first page
            t = time.perf_counter()
            first = next(p for i, (_, p) in enumerate(opened) if i not in stalled)
            first.get_by_role("button", name=re.compile("Pause")).click()
            first.get_by_role("button", name=re.compile("Play")).wait_for(timeout=60_000)
            click_s = time.perf_counter() - t
            sampler.done.set()
            for ctx, _ in opened:
                ctx.close()
            browser.close()
        time.sleep(REAP_S)
        rss_after = _rss_mb(pid)
        cpu0 = _cpu_s(pid)
        time.sleep(10)
        cpu_idle = (_cpu_s(pid) - cpu0) / 10
    finally:
        stop(proc)

    gaps, fps = [], []
    for s, e, ts in zip(starts, ends, stamps, strict=True):
        inside = [x for x in ts if s <= x <= e]
        gaps += [b - a for a, b in itertools.pairwise(inside)]
        fps.append(len(inside) / ((e - s) / 1000))
    errors, races = _log_errors(LOG.read_text())
    row = {
        "bench": "load_sessions",
        "case": f"{sessions} sessions x {window:.0f} s, coupled EM demo pair N=2000",
        "frames": len(gaps) + len(stamps),
        "latency_p50_ms": round(_percentile(gaps, 50), 1),
        "latency_p95_ms": round(_percentile(gaps, 95), 1),
        "fps_per_session_min": round(min(fps), 2),
        "fps_per_session_mean": round(sum(fps) / len(fps), 2),
        "sessions_not_playing": len(stalled),
        "pause_click_s": round(click_s, 2),
        "all_playing_after_s": round(ramp_s, 1),
        "server_log_errors": errors,
        "server_log_closed_tab_races": races,
        "rss_mb_idle": round(rss_idle),
        "rss_mb_baseline": round(rss_base),
        "rss_mb_peak": round(max(sampler.samples)),
        "rss_mb_after": round(rss_after),
        "server_cpu_after_close": round(cpu_idle, 3),
        "peer": None,
        "peer_s": None,
        "ratio": None,
    }
    print(json.dumps(row))


if __name__ == "__main__":
    main()
