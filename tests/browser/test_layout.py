"""Every tab fits a 1400 x 1000 window: no horizontal scrolling, nothing cut at the right."""

import re

import pytest
from playwright.sync_api import expect

TABS = {
    "Coupled EM": r"frame \d+",
    "Dirac descent": r"step \d+ · N",
    "GMM barycenter": r"iteration \d+ · cost",
    "Transport map": r"t \d\.\d\d · paths",
}


RIGHT_EDGE = """() => {
  let right = 0;
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'CANVAS') {
        const r = el.getBoundingClientRect();
        if (r.width > 0 && r.height > 0) right = Math.max(right, r.right);
      }
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return right;
}"""


@pytest.mark.parametrize("tab", list(TABS))
def test_tab_fits_the_window(page, server_url, shot, server_log, tab):
    page.goto(server_url)
    expect(page.get_by_text(re.compile(r"frame \d+")).first).to_be_visible(timeout=60_000)
    page.get_by_text(tab, exact=True).first.click()
    expect(page.get_by_text(re.compile(TABS[tab])).first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(1500)
    # Bokeh renders into shadow roots: walk them for the right edge of every visible canvas
    right = page.evaluate(RIGHT_EDGE)
    shot(page, "layout_" + tab.lower().replace(" ", "_"))
    assert right <= 1400, f"{tab}: a plot reaches x = {right:.0f} px in a 1400 px window"
    assert "Traceback" not in server_log()
