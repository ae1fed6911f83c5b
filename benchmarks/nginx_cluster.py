"""Two ``panel serve`` processes behind Debian's nginx on loopback (``bash .ci/dev cluster``).

Checks the scale-out path end to end: websocket sessions are spread over both processes,
no session touches two processes, no server errors; and a chromium page (its HTML from one
request, its websocket from another) plays, which holds only if nginx's sticky cookie sends
both to the same process. Figures: sessions per process, per-session fps, p50 / p95 frame
gap, Pause answer p50 / p95. No peer (OTT and POT have no server).

Usage: ``python benchmarks/nginx_cluster.py [SESSIONS] [WINDOW_S] [PORT]`` (8, 30, 8190).
Needs root or sudo for ``apt-get install nginx`` the first time.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from load_sessions import _Browsers, _log_errors, _percentile, _say, _WebsocketClients
from playwright.sync_api import sync_playwright
from served import ROOT

PROCS = 2


def _start(port: int, run: Path) -> subprocess.Popen:
    """The cluster script, in its own process group; returns once nginx and every process
    answer (the warm-up compiles first: minutes without a persistent cache)."""
    env = os.environ | {"GMMOT_CLUSTER_DIR": str(run)}
    log = (run / "cluster.out").open("w")
    proc = subprocess.Popen(
        ["bash", ".ci/dev", "cluster", str(PROCS), str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    urls = [f"http://127.0.0.1:{port + i}/liveness" for i in range(PROCS + 1)]
    deadline = time.time() + 900
    while time.time() < deadline and proc.poll() is None:
        try:
            for url in urls:
                urllib.request.urlopen(url, timeout=2)
            return proc
        except OSError:
            time.sleep(1)
    _stop(proc)
    raise RuntimeError(f"the cluster did not start; see {run}/cluster.out")


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _sessions(text: str) -> set[str]:
    return set(re.findall(r"session (\S+) opened", text))


def main() -> None:
    sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    window = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 8190
    run = ROOT / "test-artifacts" / "nginx-cluster"
    run.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}/main"
    proc = _start(port, run)
    try:
        clients = _WebsocketClients()
        for _ in range(PROCS):  # round-robin: one session per process fills its caches
            clients.play_once(url)
        _say(f"opening {sessions} websocket sessions through nginx")
        stalled = clients.open(url, sessions)
        frames, spans, clicks = clients.run(window)
        clients.close()
        with sync_playwright() as p:  # page and websocket: two requests, one process
            browsers = _Browsers(p)
            pages_played = 0
            for _ in range(PROCS):
                browsers.play_once(url)
                pages_played += 1
            browsers.browser.close()
        time.sleep(2)
    finally:
        _stop(proc)

    logs = {p: (run / f"backend-{port + p}.log").read_text() for p in range(1, PROCS + 1)}
    ids = {p: _sessions(text) for p, text in logs.items()}
    shared = set.intersection(*ids.values())
    errors = sum(_log_errors(text)[0] for text in logs.values())
    gaps = [b - a for ts in frames for a, b in itertools.pairwise(ts)]
    fps = [len(ts) / (span / 1000) for ts, span in zip(frames, spans, strict=True)]
    row = {
        "bench": "nginx_cluster",
        "case": f"{PROCS} panel serve processes behind nginx, {sessions} websocket sessions"
        f" x {window:.0f} s + {PROCS} chromium pages",
        # sessions each process logged: warm-up ones, the load's and the pages'
        "sessions_per_process": [len(ids[p]) for p in sorted(ids)],
        "sessions_on_two_processes": len(shared),
        "sessions_not_playing": len(stalled),
        "sessions_without_result": clients.lost,
        "chromium_pages_played": pages_played,
        "server_log_errors": errors,
        "frames_per_s_total": round(sum(fps), 1),
        "fps_per_session_min": round(min(fps), 2),
        "fps_per_session_median": round(_percentile(fps, 50), 2),
        "fps_per_session_max": round(max(fps), 2),
        "latency_p50_ms": round(_percentile(gaps, 50), 1),
        "latency_p95_ms": round(_percentile(gaps, 95), 1),
        "pause_p50_s": round(_percentile(clicks, 50), 3) if clicks else None,
        "pause_p95_s": round(_percentile(clicks, 95), 3) if clicks else None,
        "goal_spread_over_both": all(len(v) > 0 for v in ids.values()),
        "goal_no_errors": errors == 0 and not shared and not stalled,
        "peer": None,
        "peer_s": None,
        "ratio": None,
    }
    print(json.dumps(row))


if __name__ == "__main__":
    main()
