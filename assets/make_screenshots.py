"""Retake the README's screenshots (``assets/screenshots/*.png``, 700 px wide) from the app
as it is: a served app (started like the quick start), Debian's chromium, one view per tab.

    .venv/bin/python assets/make_screenshots.py

A few minutes on 2 cores: the W2 fit and the photo's 2000 Diracs compile on a cold cache.
"""

from __future__ import annotations

import re
import sys
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from browser_latency import _photo_png  # noqa: E402
from served import CHROMIUM_ARGS, serve, stop  # noqa: E402

# a 512^2 picture: three dark blobs on a photo's shading
PICTURE = {"height": 512, "blobs": ((0.3, 0.35, 0.07), (0.68, 0.55, 0.12), (0.45, 0.8, 0.05))}

OUT = ROOT / "assets" / "screenshots"
WIDTH = 700


def _save(page, name: str) -> None:
    from PIL import Image

    img = Image.open(BytesIO(page.screenshot()))
    img = img.convert("RGB").resize((WIDTH, round(img.height * WIDTH / img.width)), Image.LANCZOS)
    # 256 colours: a third of the bytes, no visible change on these flat UI colours
    img = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    img.save(OUT / f"{name}.png", optimize=True)
    sys.stdout.write(f"{name}.png\n")


def _visible(page, pattern: str, timeout_s: float = 600) -> None:
    from playwright.sync_api import expect

    text = page.get_by_text(re.compile(pattern)).locator("visible=true").first
    expect(text).to_be_visible(timeout=timeout_s * 1000)


def _play(page, seconds: float) -> None:
    page.get_by_role("button", name=re.compile("Play")).locator("visible=true").first.click()
    page.wait_for_timeout(seconds * 1000)
    pause = page.get_by_role("button", name=re.compile("Pause")).locator("visible=true")
    if pause.count():  # a run that converged has paused itself
        pause.first.click()
    page.wait_for_timeout(1500)


def main() -> None:
    from playwright.sync_api import sync_playwright

    proc, url = serve(ROOT / "test-artifacts" / "screenshots-server.log")
    photo = _photo_png(Path(tempfile.mkdtemp()) / "photo.png", **PICTURE)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)  # coupled EM opens playing
            _visible(page, r"frame (3\d|[4-9]\d|\d{3})")
            _save(page, "coupled_em")
            page.goto(f"{url}?tab=descent&n=2000")
            _visible(page, r"step 0 · N 2000")
            page.locator("input[type=file]").locator("visible=true").first.set_input_files(
                str(photo)
            )
            _visible(page, r"target: photo\.png")
            _visible(page, r"step 0 · N 2000")
            _play(page, 20)
            _save(page, "dirac_descent")
            page.goto(f"{url}?tab=barycenter")
            _visible(page, r"iteration 0 · cost")
            _play(page, 6)
            _save(page, "barycenter")
            page.goto(f"{url}?tab=transport")
            _visible(page, r"t 0\.00 · paths")
            _play(page, 2)
            _save(page, "transport_map")
            page.goto(f"{url}?tab=w2_fit")
            _visible(page, r"step 0 · N 600")
            _play(page, 10)
            _save(page, "w2_fit")
            browser.close()
    finally:
        stop(proc)


if __name__ == "__main__":
    main()
