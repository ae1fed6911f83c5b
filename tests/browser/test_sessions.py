"""Two browser contexts on one server (two users): data, sliders and refusals in one
never reach the other (issue 9)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from gmmot_core.buckets import bucket
from gmmot_runs.coupled_em import CLOUD_BUCKET
from tests.browser.test_export import _iteration, _pause, _ready, _tau, ring_csv
from tests.browser.test_page import _expect_visible, _frame, _wait


def test_two_sessions_change_data_and_sliders_independently(
    browser, browser_context_args, server_url, tmp_path, shot, server_log
):
    a = browser.new_context(**browser_context_args).new_page()
    b = browser.new_context(**browser_context_args).new_page()
    _ready(a, server_url)
    _ready(b, server_url)
    tau_b = _tau(b)
    _pause(a)

    # user A: a new cloud 1, a refused collinear cloud, and epsilon moved
    ring = ring_csv(tmp_path / "ring.csv", 700, 2.0, 0.1, seed=3)
    a.locator("input[type=file]").nth(1).set_input_files(str(ring))
    # a new cloud size: a compile, cold when no library test filled the cache first
    expect(a.get_by_text(re.compile(r"cloud 1: .*700"))).to_be_visible(timeout=120_000)
    line = tmp_path / "line.csv"
    line.write_text("x,y\n" + "\n".join(f"{s},{2 * s + 1}" for s in range(60)))
    a.locator("input[type=file]").nth(0).set_input_files(str(line))
    expect(a.get_by_text(re.compile("lie on one line.*previous data are kept"))).to_be_visible(
        timeout=30_000
    )
    tau_a = _tau(a)
    handle = a.locator(".noUi-handle").nth(1)  # frames/s, then epsilon
    handle.focus()
    for _ in range(3):
        handle.press("ArrowLeft")
    _wait(lambda: _tau(a) != tau_a, page=a)
    shot(a, "session_a")

    # user B: still the demo data, the default epsilon, still playing; no message
    assert _tau(b) == tau_b
    assert b.get_by_text(re.compile(r"cloud 1: .*700")).count() == 0
    assert b.get_by_text(re.compile("lie on one line")).count() == 0
    start = _frame(b)
    _wait(lambda: _frame(b) > start + 3, page=b)
    shot(b, "session_b")

    # and A's run is where A left it: paused, on the ring, stepping from 0
    a.get_by_role("button", name="Step").click()
    _wait(lambda: _iteration(a) == 1, page=a)
    for page in (a, b):
        page.context.close()
    assert "Traceback" not in server_log()


def test_pause_answers_while_a_new_size_compiles_and_other_sessions_play(
    browser, browser_context_args, server_url, shot, server_log
):
    """User A types a cloud size this server never ran (a new XLA program: seconds to
    compile): A's page says what it prepares, A's Pause answers at once, and user B's
    frames go on meanwhile (the compile runs in the worker, off the event loop).

    Bound: Pause answered within 5 s, from Playwright's click to the label change. The
    goal is 0.3 s; the benchmark measured 0.14 s on an idle server, but the fresh-clone CI
    measured 2.63 s: tracing and lowering a new program run in Python and hold the GIL,
    so the event loop gets only slices of it while a cold compile runs beside the suite's
    own load (threads are not enough there; a compile process is the next step).
    A loop blocked for the whole compile fails this bound on a cold cache."""

    import time

    a = browser.new_context(**browser_context_args).new_page()
    b = browser.new_context(**browser_context_args).new_page()
    _ready(a, server_url)
    _ready(b, server_url)
    # a size in a bucket no other browser test uses (clouds are padded to buckets: a size
    # in a bucket already run is no compile, and its notice would only flash)
    n = 2600 + int(time.time()) % 1200
    assert bucket(n, CLOUD_BUCKET) == 3888
    field = a.get_by_role("textbox").nth(0)  # the sidebar's first typed field: points per cloud
    field.fill(str(n))
    field.press("Enter")
    notice = a.get_by_text(re.compile(rf"making the preset .*{n} points: working"))
    _expect_visible(notice, timeout=10_000)
    start_b = _frame(b)
    t = time.perf_counter()
    a.get_by_role("button", name=re.compile("Pause")).click()
    expect(a.get_by_role("button", name=re.compile("Play"))).to_be_visible(timeout=5_000)
    pause_s = time.perf_counter() - t
    shot(a, "pause_during_compile")
    assert pause_s < 5.0, f"Pause took {pause_s:.2f} s during a compile"
    # the notice still up once Pause answered: the server took Pause before the compile
    # ended (it sends in order), so the new run must start paused
    during = notice.is_visible()
    if during:  # still compiling: B played on meanwhile
        _wait(lambda: _frame(b) > start_b + 3, timeout=120, page=b)
    expect(notice).to_be_hidden(timeout=300_000)
    if during:
        _wait(lambda: _frame(a) == 0, page=a)  # the new clouds' run, paused at its start
    for page in (a, b):
        page.context.close()
    assert "Traceback" not in server_log()
