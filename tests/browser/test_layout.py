"""Every tab fits a 1400 x 1000 window: no plot reaches past the right edge."""

import re

from playwright.sync_api import expect

TABS = {
    "Coupled EM": r"frame \d+",
    "Dirac descent": r"step \d+ · N",
    "GMM barycenter": r"iteration \d+ · cost",
    "Transport map": r"t \d\.\d\d · paths",
}

# Bokeh renders into shadow roots: walk them for the right edge of every visible canvas
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


def test_every_tab_fits_the_window(page, server_url, shot, server_log):
    page.goto(server_url)
    expect(page.get_by_text(re.compile(r"frame \d+")).first).to_be_visible(timeout=60_000)
    edges = {}
    for tab, ready in TABS.items():
        page.get_by_text(tab, exact=True).first.click()
        expect(page.get_by_text(re.compile(ready)).first).to_be_visible(timeout=30_000)
        page.wait_for_timeout(1500)
        edges[tab] = page.evaluate(RIGHT_EDGE)
        shot(page, "layout_" + tab.lower().replace(" ", "_"))
    too_wide = {t: round(x) for t, x in edges.items() if x > 1400}
    assert not too_wide, f"plots reach past x = 1400 px: {too_wide}"
    assert min(edges.values()) > 700  # the check saw the plots at all
    assert "Traceback" not in server_log()
