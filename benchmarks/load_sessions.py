"""Load test: many sessions playing coupled EM at once on one server (loopback).

Starts ``panel serve`` like the quick start and opens S sessions (default 20) on the
default page, which plays the demo pair at once. The sessions are either websocket
clients (``ws``, the default: ``ws_client.py`` processes that speak Bokeh's protocol and
echo each frame the moment it arrives, so the figures are the server's) or headless
chromium contexts (``browser``: paint included, about a core per page in software
rendering). Over a window of W seconds (default 60) every session records when each
frame arrives (the browser's ``window.gmmotFrames``, stamped by the frame echo of the
coupled-EM screen); the frame latency is the time between two frames in one session,
the wait a user sees.

Server memory (RSS) is read at four points: idle after the warm-up; the baseline after
one session has played and closed (per-process caches are then filled); the peak during
the load; and after every session closed and the server reaped them. The server's CPU
use over 10 s after that says whether any periodic callback still runs. Errors are the
log records with a traceback or ERROR, minus the known races of a tab closing mid-frame
(``tests/browser/conftest.py``), which are counted separately.

With ROUNDS > 1 the load is repeated on the same server (one JSON line per round): if
the later rounds' peak and after-RSS do not climb, the memory of released sessions is
reused (the allocator keeps it) rather than leaked.

Goals (issue 25): the slowest session's fps at least half the median's; Pause answered
within 1 s at p95 under load; no server errors. ``compile`` mode measures instead one
session playing while another types a cloud size the server never ran (a compile): the
player's fps before and during the compile, and how long the compiling session's Pause
took (goal: fps down by 30% at most, Pause within 0.3 s).

No peer (OTT and POT have no server). Usage:
``python benchmarks/load_sessions.py [SESSIONS] [WINDOW_S] [ws|browser|compile] [ROUNDS]``
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright
from served import CHROMIUM_ARGS, ROOT, serve, stop

LOG = ROOT / "test-artifacts" / "load-server.log"


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


def _wait_released(total: int, timeout_s: float = 300) -> float | None:
    """Seconds until the server logged the release of ``total`` sessions with none left
    live (``app/server_log.py``); None if that did not happen within ``timeout_s``."""
    t = time.perf_counter()
    while time.perf_counter() - t < timeout_s:
        live = re.findall(r" released \((\d+) live\)", LOG.read_text())
        if len(live) >= total and live[-1] == "0":
            return round(time.perf_counter() - t, 1)
        time.sleep(1)
    return None


def _say(text: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


class _Browsers:
    """S headless chromium contexts: the whole path, paint included (heavy: software
    rendering takes about a core per page)."""

    kind = "chromium contexts"

    def __init__(self, p):
        self.browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)

    def play_once(self, url: str) -> None:
        ctx, page = _open(self.browser, url)
        if not _wait_playing(page):
            raise RuntimeError("the first session did not play")
        page.wait_for_timeout(10_000)
        ctx.close()

    def open(self, url: str, sessions: int) -> list[int]:
        """Open the sessions; return those not playing 60 s after the last one opened."""
        self.opened = [_open(self.browser, url) for _ in range(sessions)]
        stalled = [i for i, (_, pg) in enumerate(self.opened) if not _wait_playing(pg, 3, 60)]
        for i in stalled:  # what a user of a session that never played would see
            self.opened[i][1].screenshot(path=str(LOG.parent / f"load-stalled-{i}.png"))
        return stalled

    def run(self, window: float) -> tuple[list[list[float]], list[float], float]:
        """Play ``window`` s; return each page's frame times (ms) inside the window, the
        window's length per page (ms) and how long a Pause click took (s)."""
        pages = [pg for _, pg in self.opened]
        starts = [pg.evaluate("performance.now()") for pg in pages]
        pages[0].wait_for_timeout(window * 1000)
        ends = [pg.evaluate("performance.now()") for pg in pages]
        stamps = [pg.evaluate("window.gmmotFrames || []") for pg in pages]
        clicks = []
        for pg in pages:
            if not _frames(pg):
                continue
            t = time.perf_counter()
            pg.get_by_role("button", name=re.compile("Pause")).click()
            pg.get_by_role("button", name=re.compile("Play")).wait_for(timeout=60_000)
            clicks.append(time.perf_counter() - t)
        spans = zip(starts, ends, stamps, strict=True)
        inside = [[x for x in ts if s <= x <= e] for s, e, ts in spans]
        return inside, [e - s for s, e in zip(starts, ends, strict=True)], clicks

    def close(self) -> None:
        for ctx, _ in getattr(self, "opened", []):
            ctx.close()
        self.opened = []


class _WebsocketClients:
    """S processes of ``ws_client.py``: Bokeh protocol clients that echo each frame at
    once (no paint), so the figures are the server's alone; light enough for 20 sessions
    on a small machine."""

    kind = "websocket clients"

    def __init__(self, _p=None):
        self.procs: list[subprocess.Popen] = []

    def _start(self, url: str, *extra: str) -> tuple[subprocess.Popen, queue.Queue]:
        # niced: on a small machine the clients must not starve the server they measure
        client = str(Path(__file__).with_name("ws_client.py"))
        proc = subprocess.Popen(
            ["nice", "-n", "19", sys.executable, client, url, *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
        self.procs.append(proc)
        return proc, lines

    @staticmethod
    def _tell(proc: subprocess.Popen, until: float) -> None:
        proc.stdin.write(f"{until}\n")
        proc.stdin.flush()

    @staticmethod
    def _result(lines: queue.Queue, until: float) -> dict | None:
        """The client's JSON line, or None if it gave none 10 min after ``until`` (all
        sessions pause at once: on a small machine the last answers take minutes)."""
        while True:
            try:
                line = lines.get(timeout=max(1.0, until + 600 - time.time()))
            except queue.Empty:
                return None
            if line.startswith("{"):
                return json.loads(line)

    def play_once(self, url: str) -> None:
        proc, lines = self._start(url)
        if lines.get(timeout=600).strip() != "playing":
            raise RuntimeError("the first session did not play")
        until = time.time() + 10
        self._tell(proc, until)
        if self._result(lines, until) is None:
            raise RuntimeError("the first session did not stop")
        proc.wait(timeout=60)

    def open(self, url: str, sessions: int) -> list[int]:
        self.clients = [self._start(url) for _ in range(sessions)]
        deadline, stalled = time.time() + 600, []
        for i, (_, lines) in enumerate(self.clients):
            try:
                lines.get(timeout=max(1.0, deadline - time.time()))
            except queue.Empty:
                stalled.append(i)
        return stalled

    def run(self, window: float) -> tuple[list[list[float]], list[float], float]:
        t0 = time.time()
        until = t0 + window
        for proc, _ in self.clients:
            self._tell(proc, until)
        results = [self._result(lines, until) for _, lines in self.clients]
        self.lost = sum(r is None for r in results)
        results = [r for r in results if r is not None]
        inside = [[1000 * x for x in r["frames"] if t0 <= x <= until] for r in results]
        clicks = [r["pause_click_s"] for r in results if r["pause_click_s"] is not None]
        return inside, [1000 * window] * len(results), clicks

    def close(self) -> None:
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs = []


def _round(clients, pid: int, url: str, sessions: int, window: float, released: int) -> dict:
    """One round of load: open, play ``window`` s, close, wait until every session is
    released (``released`` in all so far); the figures of that round."""
    sampler = _Sampler(pid)
    sampler.start()
    t_open = time.perf_counter()
    stalled = clients.open(url, sessions)
    ramp_s = time.perf_counter() - t_open
    _say(f"all open after {ramp_s:.0f} s, {len(stalled)} not playing; window {window} s")
    frames, spans, clicks = clients.run(window)
    sampler.done.set()
    clients.close()
    released_s = _wait_released(released)
    time.sleep(5)
    rss_after = _rss_mb(pid)
    cpu0 = _cpu_s(pid)
    time.sleep(10)
    cpu_idle = (_cpu_s(pid) - cpu0) / 10
    _say("frames per session in the window: " + " ".join(str(len(ts)) for ts in frames))
    gaps = [b - a for ts in frames for a, b in itertools.pairwise(ts)]
    fps = [len(ts) / (span / 1000) for ts, span in zip(frames, spans, strict=True)]
    median = _percentile(fps, 50)
    pause_p95 = _percentile(clicks, 95) if clicks else float("nan")
    return {
        "frames": sum(len(ts) for ts in frames),
        "frames_per_s_total": round(sum(fps), 1),
        "latency_p50_ms": round(_percentile(gaps, 50), 1),
        "latency_p95_ms": round(_percentile(gaps, 95), 1),
        "fps_per_session_min": round(min(fps), 2),
        "fps_per_session_median": round(median, 2),
        "fps_per_session_max": round(max(fps), 2),
        "fps_per_session_mean": round(sum(fps) / len(fps), 2),
        "sessions_not_playing": len(stalled),
        "pause_answers": len(clicks),
        "pause_p50_s": round(_percentile(clicks, 50), 3) if clicks else None,
        "pause_p95_s": round(pause_p95, 3),
        "goal_min_fps_half_median": min(fps) >= 0.5 * median,
        "goal_pause_p95_1s": pause_p95 <= 1.0,
        "sessions_without_result": getattr(clients, "lost", 0),
        "all_playing_after_s": round(ramp_s, 1),
        "rss_mb_peak": round(max(sampler.samples)),
        "rss_mb_after": round(rss_after),
        "all_released_after_close_s": released_s,
        "server_cpu_after_close": round(cpu_idle, 3),
    }


def _compile_case(clients: _WebsocketClients, url: str, before_s: float = 15.0) -> dict:
    """A plays; after ``before_s`` B opens and types a cloud size never run here (a new
    program), pauses 0.5 s later; A's fps before and during B's compile, B's Pause."""
    _, a_lines = clients._start(url)
    if a_lines.get(timeout=600).strip() != "playing":
        raise RuntimeError("the playing session did not play")
    time.sleep(before_s)
    n = 1500 + int(time.time()) % 997
    _, b_lines = clients._start(url, "compile", str(n))
    got: dict = {}
    deadline = time.time() + 900
    while (
        "compile_to" not in got or "pause_during_compile_s" not in got
    ) and time.time() < deadline:
        try:
            line = b_lines.get(timeout=max(1.0, deadline - time.time()))
        except queue.Empty:
            break
        if line.startswith("{"):
            got |= json.loads(line)
    until = time.time() + 2
    for proc in clients.procs:
        if proc.poll() is None:
            clients._tell(proc, until)
    a = clients._result(a_lines, until)
    clients.close()
    if a is None or "compile_to" not in got:
        raise RuntimeError(f"the compile case did not finish: {got}")
    t0, t1 = got["compile_from"], got["compile_to"]
    before = [x for x in a["frames"] if t0 - before_s <= x < t0]
    during = [x for x in a["frames"] if t0 <= x <= t1]
    fps_before, fps_during = len(before) / before_s, len(during) / max(t1 - t0, 1e-9)
    drop = 1 - fps_during / fps_before
    return {
        "cloud_size_compiled": n,
        "compile_s": round(t1 - t0, 1),
        "player_fps_before": round(fps_before, 2),
        "player_fps_during_compile": round(fps_during, 2),
        "player_fps_drop": round(drop, 3),
        "pause_during_compile_s": round(got["pause_during_compile_s"], 3),
        "goal_drop_30pct": drop <= 0.30,
        "goal_pause_0_3s": got["pause_during_compile_s"] <= 0.3,
    }


def main() -> None:
    sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    window = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    mode = sys.argv[3] if len(sys.argv) > 3 else "ws"
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    LOG.parent.mkdir(exist_ok=True)
    proc, url = serve(LOG)
    pid = proc.pid
    rows = []
    try:
        with sync_playwright() as p:
            kind = {"browser": _Browsers, "ws": _WebsocketClients, "compile": _WebsocketClients}
            clients = kind[mode](p)
            time.sleep(5)
            rss_idle = _rss_mb(pid)
            clients.play_once(url)  # one session: fills the per-process caches
            if _wait_released(1) is None:
                raise RuntimeError("the first session was not released")
            time.sleep(5)
            rss_base = _rss_mb(pid)
            if mode == "compile":
                rows.append(_compile_case(clients, url))
                rounds = 0
            for r in range(rounds):  # a second round shows whether memory is reused
                _say(f"round {r + 1}: opening {sessions} {clients.kind}")
                rows.append(_round(clients, pid, url, sessions, window, 1 + sessions * (r + 1)))
    finally:
        stop(proc)

    errors, races = _log_errors(LOG.read_text())
    for r, row in enumerate(rows):
        head = {
            "bench": "load_sessions",
            "case": (
                "one session plays while another compiles a new cloud size"
                if mode == "compile"
                else f"{sessions} {clients.kind} x {window:.0f} s, coupled EM demo pair N=2000"
                + (f", round {r + 1}" if rounds > 1 else "")
            ),
        }
        tail = {
            "server_log_errors": errors,
            "server_log_closed_tab_races": races,
            "rss_mb_idle": round(rss_idle),
            "rss_mb_baseline": round(rss_base),
            "peer": None,
            "peer_s": None,
            "ratio": None,
        }
        print(json.dumps(head | row | tail))


if __name__ == "__main__":
    main()
