"""Real-browser fixtures: a ``panel serve`` subprocess and Debian's chromium via Playwright.

Never downloads a browser: ``executable_path`` points at ``/usr/bin/chromium``.
Screenshots go to ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from gmmot_core.io import WEBSOCKET_MAX_BYTES

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("GMMOT_CHROMIUM", "/usr/bin/chromium")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium chromium-driver")
    return {
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args():
    return {"viewport": {"width": 1400, "height": 1000}, "accept_downloads": True}


def wait_until_up(url: str, proc: subprocess.Popen, seconds: float, what: str, log: Path):
    """Until ``url`` answers; the test fails with the end of ``log`` if ``proc`` ends or
    ``seconds`` pass first."""
    deadline = time.time() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"{what} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)


def stop(proc: subprocess.Popen, seconds: float) -> None:
    """SIGTERM, then SIGKILL after ``seconds``; reaped either way (no "subprocess is still
    running" warning at exit)."""
    proc.terminate()
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server_url():
    """Start ``panel serve app/main.py`` (with the warm-up hook) and yield its URL."""
    port = _free_port()
    log = ARTIFACTS / "server.log"
    ARTIFACTS.mkdir(exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "panel",
        "serve",
        "app/main.py",
        "--setup",
        "app/warmup.py",
        "--port",
        str(port),
        "--address",
        "127.0.0.1",
        "--allow-websocket-origin",
        f"127.0.0.1:{port}",
        "--liveness",
        "--websocket-max-message-size",
        str(WEBSOCKET_MAX_BYTES),
    ]
    with log.open("w") as fh:
        # no background warm-up (app/warmup.py): the tests need the cores. The JAX cache
        # is this test run's (GMMOT_RUN_JAX_CACHE: `bash .ci/dev test` makes one per run,
        # shared with the library tests that run beside) or a fresh one: never an older run's,
        # so a test that waits for a compile is not turned into a cache read
        run_cache = os.environ.get("GMMOT_RUN_JAX_CACHE")
        cache = run_cache or tempfile.mkdtemp(prefix="gmmot-jax-cache-")
        env = dict(os.environ, GMMOT_WARM_MORE="0", GMMOT_JAX_CACHE=cache)
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        # the warm-up compiles the core first (~2 min)
        wait_until_up(f"http://127.0.0.1:{port}/liveness", proc, 600, "panel serve", log)
        yield f"http://127.0.0.1:{port}/main"
    finally:
        stop(proc, 10)
        if not run_cache:
            shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture
def shot():
    """``shot(page, name)`` saves a full-page screenshot under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)

    def _shot(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return _shot


CLOSED_SOCKET = ("WebSocketClosedError", "StreamClosedError")
RECORD = re.compile(r"^(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", re.M)


def _closed_tab_race(record: str) -> bool:
    """A log record that comes from a tab closing mid-frame, not from the app.

    Known races: tornado's "Task exception was never retrieved" for a write on a closed
    websocket, and Bokeh reaching for a connection's session that is gone or not made
    yet (``assert self._session is not None`` in ``bokeh/server/connection.py``): an
    "error handling message" for a PATCH-DOC (the browser's autorange) that arrives
    after the close, or an "Uncaught exception GET .../ws" when a tab closes while its
    session is still being created (slow on a loaded machine).
    """
    if "Task exception was never retrieved" in record:
        return any(m in record for m in CLOSED_SOCKET)
    bokeh_race = "error handling message" in record or "Uncaught exception GET" in record
    return bokeh_race and "assert self._session is not None" in record


@pytest.fixture
def server_log():
    """``server_log()``: the served app's log, minus the closed-tab races above.

    Any other traceback stays in the text the tests check.
    """

    def _read() -> str:
        path = ARTIFACTS / "server.log"
        text = path.read_text() if path.exists() else ""
        return "".join(r for r in RECORD.split(text) if not _closed_tab_race(r))

    return _read


@pytest.fixture
def open_tab():
    """``open_tab(page, label)`` clicks a tab and waits until the sidebar shows that tab's
    controls: the sidebar follows the tab a moment later (a server round trip), and
    until then a button name such as "Step" or "Play" may still find coupled EM's."""
    from playwright.sync_api import expect

    counter = re.compile(r"frame \d+")  # coupled EM's counter, in its sidebar

    def _open(page, label: str) -> None:
        page.get_by_text(label, exact=True).first.click()
        shown = page.get_by_text(counter).first
        if label == "Coupled EM":
            expect(shown).to_be_visible(timeout=30_000)
        else:
            expect(shown).to_be_hidden(timeout=30_000)

    return _open


_RECORD_JS = """(marks) => {
  const t0 = performance.now();
  const seen = (window.gmmotSeen = {});
  window.addEventListener("input", () => { seen.input ??= performance.now() - t0; }, true);
  window.addEventListener("keydown", () => { seen.keydown ??= performance.now() - t0; }, true);
  clearInterval(window.gmmotRecorder);
  window.gmmotRecorder = setInterval(() => {
    for (const m of Bokeh.documents[0].all_models) {
      if (typeof m.text !== "string" || !m.visible) continue;
      for (const [name, words] of Object.entries(marks))
        if (!(name in seen) && m.text.includes(words)) seen[name] = performance.now() - t0;
    }
  }, 5);
}"""


@pytest.fixture
def record_texts():
    """``record_texts(page, {name: words})`` starts noting, in the page, when a shown
    text of the page's models first contains ``words`` (ms, the same clock for all, with
    ``input`` and ``keydown`` for the user's first such event); ``record_texts(page)``
    returns what was seen so far. Read from Bokeh's models every 5 ms, so the order of
    two events is known, not the paint."""

    def _record(page, marks: dict[str, str] | None = None) -> dict[str, float]:
        if marks is not None:
            page.evaluate(_RECORD_JS, marks)
            return {}
        return page.evaluate("() => ({...window.gmmotSeen})")

    return _record
