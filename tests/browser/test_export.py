"""A user's round trip in the browser: move a slider, upload clouds (good and malformed),
download parameters, results, data and figures, and replay the parameters headless."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_page import _frame, _wait


def ring_csv(path, n: int, radius: float, noise: float, seed: int):
    """Write ``n`` noisy points on a circle as an x,y CSV (a non-Gaussian upload)."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 2 * np.pi, n)
    pts = np.c_[radius * np.cos(t), radius * np.sin(t)] + rng.normal(scale=noise, size=(n, 2))
    path.write_text("x,y\n" + "\n".join(f"{x:.5f},{y:.5f}" for x, y in pts))
    return path


def _ready(page, server_url) -> None:
    page.goto(server_url)
    expect(page.get_by_text(re.compile(r"frame \d+")).first).to_be_visible(timeout=60_000)
    start = _frame(page)
    _wait(lambda: _frame(page) > start + 2, page=page)  # the session is live


def _pause(page) -> None:
    page.get_by_role("button", name=re.compile("Pause")).click()
    expect(page.get_by_role("button", name=re.compile("Play"))).to_be_visible(timeout=30_000)
    page.wait_for_timeout(400)


def _iteration(page) -> int:
    text = page.get_by_text(re.compile(r"EM iteration \d+")).first.inner_text()
    return int(re.search(r"EM iteration\s+(\d+)", text).group(1))


def _tau(page) -> str:
    return page.get_by_text(re.compile(r"tau\s*= rho")).first.inner_text()


def test_slider_moves_tau_while_playing(page, server_url, shot, server_log):
    _ready(page, server_url)
    before, it0 = _tau(page), _iteration(page)
    handle = page.locator(".noUi-handle").nth(1)  # sidebar order: frames/s, then epsilon
    handle.focus()
    for _ in range(3):
        handle.press("ArrowLeft")
    _wait(lambda: _tau(page) != before, page=page)
    assert "eps** = 0.01" not in _tau(page) and "eps = 0.01 " not in _tau(page)
    _wait(lambda: _iteration(page) > it0 + 3, page=page)  # still playing, no stall
    # issue 42 item 2: after a fast drag while the server was busy, the label read 0.316
    # for minutes with 1.78 in effect. Drag fast, to and fro, while it plays; once the
    # label rests it names the epsilon in effect
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for dx in (90, -60, 140, -30, 60):
        page.mouse.move(x + dx, y, steps=4)
    page.mouse.up()
    label = page.get_by_text(re.compile(r"^epsilon \(entropic\):")).first

    def label_is_in_effect() -> bool:
        shown = re.search(r"\):\s*([0-9.e+-]+)", label.inner_text())
        used = re.search(r"eps\*?\*?\s*=\s*([0-9.e+-]+)", _tau(page))
        return bool(shown and used) and float(shown.group(1)) == float(used.group(1))

    _wait(label_is_in_effect, page=page)
    page.wait_for_timeout(2000)  # and stays so: no late write of an earlier value
    assert label_is_in_effect(), (label.inner_text(), _tau(page))
    shot(page, "coupled_em_after_slider")
    assert "Traceback" not in server_log()


def test_upload_good_then_malformed_keeps_good(
    page, server_url, tmp_path, shot, server_log, record_texts
):
    _ready(page, server_url)
    _pause(page)
    good = ring_csv(tmp_path / "ring.csv", 800, 3.0, 0.2, seed=7)
    record_texts(page, {"browser": "receiving ring.csv", "server": "reading ring.csv"})
    page.locator("input[type=file]").nth(1).set_input_files(str(good))
    expect(page.get_by_text(re.compile(r"cloud 1: .*800"))).to_be_visible(timeout=30_000)
    expect(page.get_by_text(re.compile(r"EM iteration 0\b")).first).to_be_visible()
    # issue 42 item 6: the main area said nothing while a file travelled (seconds for a
    # large one). The browser says so as the file is picked, before the server has it,
    # and the notice is gone once the upload took effect
    seen = record_texts(page)
    assert seen["input"] <= seen["browser"] < seen["server"], seen
    expect(page.get_by_text(re.compile("receiving ring.csv"))).to_be_hidden(timeout=10_000)
    # item 11: the Data section says which clouds are in use (it named the preset)
    expect(page.get_by_text("cloud 1 from uploaded ring.csv (800 points)")).to_be_visible()

    bad = tmp_path / "broken.csv"
    bad.write_text("x,y\n1.0,2.0\nabc,3\n")
    page.locator("input[type=file]").nth(1).set_input_files(str(bad))
    expect(
        page.get_by_text(re.compile("rejected.*non-numeric.*previous data are kept"))
    ).to_be_visible(timeout=30_000)
    # the 800-point cloud is still the one in use: a step runs on it and the data export has it
    page.get_by_role("button", name="Step").click()
    _wait(lambda: _iteration(page) == 1, page=page)
    with page.expect_download() as dl:
        page.get_by_role("button", name=re.compile(r"data \(CSV\)")).click()
    rows = dl.value.path().read_text().strip().splitlines()
    assert rows[0] == "cloud,x,y,weight"
    assert sum(r.startswith("1,") for r in rows[1:]) == 800
    shot(page, "coupled_em_after_bad_upload")
    assert "Traceback" not in server_log()


def test_file_over_the_cap_is_refused_in_the_browser(page, server_url, tmp_path, shot, server_log):
    """A 60 MB file (over the 50 MiB cap) is refused by the browser before it is sent:
    the page says so, stays connected and keeps playing on its data (issue 9)."""
    _ready(page, server_url)
    big = tmp_path / "big.csv"
    big.write_bytes(b"x,y\n" + b"1.0,2.0\n" * 7_500_000)
    page.locator("input[type=file]").nth(1).set_input_files(str(big))
    expect(page.get_by_text("File is too large", exact=True)).to_be_visible(timeout=30_000)
    expect(page.get_by_text(re.compile(r"^Maximum file size is \d"))).to_be_visible()
    # the notice the browser showed as the file was picked is gone: nothing travels
    expect(page.get_by_text(re.compile("receiving big.csv"))).to_be_hidden(timeout=10_000)
    start = _frame(page)
    _wait(lambda: _frame(page) > start + 3, page=page)  # connected, still playing
    assert page.get_by_text(re.compile(r"cloud 1: ")).count() == 0
    page.get_by_text("File is too large", exact=True).scroll_into_view_if_needed()
    shot(page, "upload_too_large")
    assert "Traceback" not in server_log()


def test_download_params_replay_and_figures(page, server_url, tmp_path, shot, server_log):
    _ready(page, server_url)
    _pause(page)
    it = _iteration(page)
    page.get_by_role("button", name="Step").click()
    _wait(lambda: _iteration(page) == it + 1, page=page)
    files = []
    for label in (r"parameters \(JSON", r"results \(JSON", r"figure \(PNG", r"figure \(SVG"):
        with page.expect_download() as dl:
            page.get_by_role("button", name=re.compile(label)).click()
        path = tmp_path / dl.value.suggested_filename
        dl.value.save_as(path)
        files.append(path)
    params, app_results, png, svg = files

    spec = json.loads(params.read_text())
    app = json.loads(app_results.read_text())
    assert spec["iterations"] == app["iteration"] > 0
    out, fig = tmp_path / "replayed.json", tmp_path / "replayed.png"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gmmot_runs",
            "replay",
            str(params),
            "--out",
            str(out),
            "--figure",
            str(fig),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text()) == app  # identical numbers, not merely close

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert "<svg" in svg.read_text()[:2000] and "raw coupling" in svg.read_text()
    # issue 42 item 4: the figure had no growth factors and one colour for both clouds'
    # marginals; it writes the labels the screen writes on the links, and one legend
    # entry per cloud
    on_screen = page.evaluate(_LINK_LABELS_JS)
    assert on_screen, "the pair plot writes no growth factor"
    text = svg.read_text()
    assert [label for label in on_screen if label not in text] == [], on_screen
    assert "coupling marginal, cloud 0" in text and "coupling marginal, cloud 1" in text
    (ARTIFACTS / "downloaded_figure.png").write_bytes(png.read_bytes())
    shot(page, "coupled_em_exports")
    assert "Traceback" not in server_log()


# the growth factors the pair plot writes on its links (the non-empty labels)
_LINK_LABELS_JS = """() => {
  for (const m of Bokeh.documents[0].all_models) {
    if (!m.title || m.title.text !== "both mixtures and the coupling") continue;
    for (const r of m.renderers)
      if (r.glyph && r.glyph.type === "Text")
        return [...r.data_source.data.label].filter((t) => t);
  }
  return [];
}"""
