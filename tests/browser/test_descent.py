"""The Dirac descent screen in the served page: Laguerre cells drawn, Lloyd steps advance."""

import re

from playwright.sync_api import expect


def _step(page) -> int:
    text = page.get_by_text(re.compile(r"step \d+ · N")).first.inner_text()
    return int(re.search(r"step\s+(\d+)", text).group(1))


def test_descent_tab_steps_and_plays(page, server_url, shot, server_log):
    page.goto(server_url)
    expect(page.get_by_text(re.compile(r"frame \d+")).first).to_be_visible(timeout=60_000)
    page.get_by_text("Dirac descent", exact=True).first.click()
    expect(page.get_by_text(re.compile(r"step 0 · N 200")).first).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Step").click()
    expect(page.get_by_text(re.compile(r"step 1 · N 200")).first).to_be_visible(timeout=30_000)
    page.get_by_role("button", name=re.compile("Play")).click()
    page.wait_for_timeout(4000)
    assert _step(page) >= 5  # Lloyd steps at N=200 take ~60 ms each
    page.get_by_role("button", name=re.compile("Pause")).click()
    page.wait_for_timeout(800)
    shot(page, "dirac_descent_lloyd")
    assert "Traceback" not in server_log()
