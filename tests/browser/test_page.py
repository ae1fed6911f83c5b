"""The served page shows the embedded demo data with fitted ellipses at once."""

import re

from playwright.sync_api import expect


def _canvas_count(page) -> int:
    # Bokeh renders into canvases inside shadow roots
    return page.evaluate(
        """() => { let n = 0; const walk = (root) => { root.querySelectorAll('*').forEach(el => {
             if (el.tagName === 'CANVAS' && el.width > 100 && el.height > 100) n += 1;
             if (el.shadowRoot) walk(el.shadowRoot); }); }; walk(document); return n; }"""
    )


def test_default_page_shows_fitted_clouds(page, server_url, shot, server_log):
    page.goto(server_url)
    expect(page.get_by_text("gmmot — GMM optimal transport explorer").first).to_be_visible(
        timeout=60_000
    )
    # the fit summary table has one row per cloud with a finite log-likelihood
    expect(page.get_by_text("mean log-likelihood")).to_be_visible(timeout=60_000)
    rows = page.get_by_role("row").all_inner_texts()
    lls = [float(m.group(1)) for r in rows if (m := re.search(r"cloud \d\s+(-?\d+\.\d+)", r))]
    assert len(lls) == 2 and all(-10 < v < 0 for v in lls), rows
    page.wait_for_function(
        """() => { let n = 0; const walk = (root) => { root.querySelectorAll('*').forEach(el => {
             if (el.tagName === 'CANVAS' && el.width > 100) n += 1;
             if (el.shadowRoot) walk(el.shadowRoot); }); }; walk(document); return n >= 2; }""",
        timeout=30_000,
    )
    page.wait_for_timeout(1500)
    assert _canvas_count(page) >= 2
    shot(page, "default_page")
    assert "Traceback" not in server_log()


def test_changing_seed_refits(page, server_url, shot, server_log):
    page.goto(server_url)
    expect(page.get_by_text("mean log-likelihood")).to_be_visible(timeout=60_000)
    before = page.get_by_role("row").all_inner_texts()
    seed = page.get_by_label("Seed")
    seed.fill("7")
    seed.press("Enter")
    expect(page.get_by_role("row").nth(1)).not_to_have_text(before[1], timeout=30_000)
    shot(page, "seed_7")
    assert "Traceback" not in server_log()
