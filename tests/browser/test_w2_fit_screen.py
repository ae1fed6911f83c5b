"""The Fit GMM by W2 screen in the served page: prepared when opened (off the event loop,
with a notice), Play advances the fit, a bad upload is refused and the fit is kept."""

import re

from playwright.sync_api import expect

from tests.browser.test_page import _expect_visible


def _step(page) -> int:
    text = page.get_by_text(re.compile(r"step \d+ · N 600")).first.inner_text()
    return int(re.search(r"step\s+(\d+)", text).group(1))


def _settled_step(page, quiet_ms: int = 1500, tries: int = 20) -> int:
    """The step count once it stayed the same for ``quiet_ms`` (fails if it never does:
    Pause did not stop the run)."""
    last = _step(page)
    for _ in range(tries):
        page.wait_for_timeout(quiet_ms)
        now = _step(page)
        if now == last:
            return now
        last = now
    raise AssertionError(f"the step count still moves {tries * quiet_ms / 1000:.0f} s after Pause")


def test_w2_fit_tab_prepares_plays_and_keeps_its_fit(
    page, server_url, tmp_path, shot, server_log, open_tab, record_texts
):
    page.goto(server_url)
    expect(page.get_by_text(re.compile(r"frame \d+")).first).to_be_visible(timeout=60_000)
    open_tab(page, "Fit GMM by W2")
    # the first build on this server compiles (about a minute on 2 cores): a notice says
    # so meanwhile, and the rest of the page keeps answering. An earlier test's tab may
    # have compiled it already (the fit is then ready in a second or two): either shows.
    notice = page.get_by_text(re.compile(r"preparing the W2 fit for N = 600"))
    ready = page.get_by_text(re.compile(r"step 0 · N 600")).first
    _expect_visible(notice.or_(ready).locator("visible=true").first, 30_000, inspect=notice)
    if notice.is_visible():
        open_tab(page, "Coupled EM")
        expect(page.get_by_text(re.compile(r"frame \d+")).first).to_be_visible(timeout=5_000)
        open_tab(page, "Fit GMM by W2")
    expect(page.get_by_text(re.compile(r"step 0 · N 600")).first).to_be_visible(timeout=600_000)
    # issue 42 item 10: before the first step the table showed nan for the fit
    expect(page.get_by_text("(after the first step)").first).to_be_visible()
    assert not _nan_shown(page)
    page.get_by_role("button", name=re.compile("Play")).click()
    page.wait_for_timeout(6000)
    page.get_by_role("button", name=re.compile("Pause")).click()
    # the server took the click once the label is back; a frame already running when it
    # came still lands (Pause drops only frames not started), so wait for the count to rest
    expect(page.get_by_role("button", name=re.compile("Play"))).to_be_visible(timeout=30_000)
    before = _settled_step(page)
    assert before >= 10  # 5 Adam steps a frame, ~0.1-0.3 s a frame
    expect(page.get_by_text(re.compile(r"objective \(W2² \+ side² x mass off\)"))).to_be_visible()
    # item 10: both plot titles were cut off ("ellipses (E", "(EM: dashe")
    texts = ["density, cells and ellipses (EM dashed)", "objective (EM dashed)"]
    titles = page.evaluate(_TITLES_JS, texts)
    assert sorted(t["text"] for t in titles) == sorted(texts), titles
    assert all(t["width"] <= t["room"] for t in titles), titles
    shot(page, "w2_fit_played")
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n3,oops\n")
    page.locator("input[type=file]").last.set_input_files(str(bad))
    expect(page.get_by_text(re.compile("File rejected.*previous cloud is kept"))).to_be_visible(
        timeout=30_000
    )
    assert _step(page) == before
    # items 1 and 10: K = 3 typed and Enter prepares that fit (it did nothing until
    # "Prepare this fit"), and it works: the EM column showed nan and Play stopped at
    # step 0 ("Newton did not reach the mass tolerance") on this default cloud
    k = page.get_by_label(re.compile(r"components K"))
    # a value out of range is refused aloud, and leaves no notice of work behind
    k.fill("99")
    k.press("Enter")
    expect(page.get_by_text(re.compile(r"99 refused; it must lie in 1-8"))).to_be_visible(
        timeout=30_000
    )
    busy = page.get_by_text(re.compile(r"applying|preparing")).locator("visible=true")
    expect(busy).to_have_count(0, timeout=10_000)
    # item 6: the browser says at once that the typed K is being applied
    record_texts(page, {"browser": "applying components K", "server": "preparing the W2 fit"})
    k.fill("3")
    k.press("Enter")
    expect(page.get_by_text(re.compile(r"step 0 · N 600")).first).to_be_visible(timeout=300_000)
    seen = record_texts(page)
    assert seen["keydown"] <= seen["browser"] < seen["server"], seen
    assert not _nan_shown(page)
    page.get_by_role("button", name=re.compile("Play")).click()
    expect(page.get_by_text(re.compile(r"step (1\d|[2-9]\d) · N 600")).first).to_be_visible(
        timeout=60_000
    )
    page.get_by_role("button", name=re.compile("Pause")).click()
    assert not _nan_shown(page)
    assert page.get_by_text(re.compile("did not reach")).locator("visible=true").count() == 0
    shot(page, "w2_fit_k3")
    assert "Traceback" not in server_log()


def _nan_shown(page) -> bool:
    return page.get_by_text(re.compile(r"\bnan\b")).locator("visible=true").count() > 0


# the figures titled so: each title's drawn width (its own font), and the width of the
# frame it starts over (the canvas leaves it that much at least)
_TITLES_JS = """(texts) => {
  const ctx = document.createElement("canvas").getContext("2d");
  const out = [];
  for (const m of Bokeh.documents[0].all_models) {
    const t = m.title;
    if (!t || !texts.includes(t.text) || m.inner_width === undefined) continue;
    ctx.font = `${t.text_font_style} ${t.text_font_size} ${t.text_font}`;
    out.push({text: t.text, width: ctx.measureText(t.text).width, room: m.inner_width});
  }
  return out;
}"""
