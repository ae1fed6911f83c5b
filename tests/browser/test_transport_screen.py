"""The transport-map screen in the served page: mu_t follows the t slider and Play."""

import re

from playwright.sync_api import expect


def _t(page) -> float:
    text = page.get_by_text(re.compile(r"t \d\.\d\d · paths")).first.inner_text()
    return float(re.search(r"t\s+(\d\.\d\d)", text).group(1))


def test_transport_tab_interpolates(page, server_url, shot, server_log, open_tab):
    page.goto(server_url)
    expect(page.get_by_text(re.compile(r"frame \d+")).first).to_be_visible(timeout=60_000)
    open_tab(page, "Transport map")
    expect(page.get_by_text(re.compile(r"t 0\.00 · paths \d+ of \d+×\d+")).first).to_be_visible(
        timeout=30_000
    )
    page.get_by_role("button", name=re.compile("Play")).click()
    page.wait_for_timeout(3000)
    assert _t(page) > 0.05  # t advances by 0.02 per frame
    page.get_by_role("button", name=re.compile("Pause")).last.click()
    page.wait_for_timeout(500)
    shot(page, "transport_map_playing")
    assert "Traceback" not in server_log()
