"""Lloyd steps per second on the Dirac descent screen in a real browser (Debian chromium).

Starts ``panel serve`` like the quick start, opens the Dirac descent tab, uploads the
tutorial's two-peak target upscaled to 256 x 256 as a grayscale PNG (dark = mass), sets
N = 1000 Diracs, presses Play (Lloyd, one step per frame), counts the steps the page shows
over a fixed window and then times a Pause click. The count comes from the step counter
the user sees, so it includes the server's Newton solves, the document patches (1000
cell polygons a frame) and the browser's rendering. No peer has a viewer; the goal is 10
steps per second. The screen's clock ticks every ``FRAME_MS`` (app/screens/descent.py).

Usage: python benchmarks/browser_descent_fps.py [N ...]   (default 1000)
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from served import ROOT, measure_pages, rate_and_pause

WINDOW_S = 10.0
RES = 256
TARGET = ROOT / "tests/reference/semidiscrete/target.npy"


def _step(page) -> int:
    text = page.get_by_text(re.compile(r"step \d+ · N")).first.inner_text()
    return int(re.search(r"step\s+(\d+)", text).group(1))


def _target_png(folder: Path) -> Path:
    img = np.load(TARGET)
    img = np.kron(img, np.ones((RES // img.shape[0], RES // img.shape[1])))
    gray = np.round(255.0 * (1.0 - img / img.max())).astype(np.uint8)  # dark = mass
    path = folder / "two_peaks_256.png"
    Image.fromarray(gray.T[::-1], "L").save(path)  # axis 0 = x, rows top-down
    return path


def measure(page, url: str, n: int, png: Path) -> dict:
    page.goto(url)
    page.get_by_text(re.compile(r"frame \d+")).first.wait_for(timeout=120_000)
    page.get_by_text("Dirac descent", exact=True).first.click()
    page.get_by_text(re.compile(r"step 0 · N 200")).first.wait_for(timeout=60_000)
    page.locator("input[type=file]").nth(2).set_input_files(str(png))
    page.get_by_text(re.compile(rf"{png.name}, {RES} x {RES} pixels")).wait_for(timeout=120_000)
    box = page.get_by_label("Diracs N")
    box.fill(str(n))
    box.press("Enter")
    page.get_by_text(re.compile(rf"step 0 · N {n}\b")).first.wait_for(timeout=300_000)
    page.get_by_role("button", name=re.compile("Play")).click()
    while _step(page) < 3:  # the first step compiles this N and image size
        page.wait_for_timeout(500)
    fps, latency = rate_and_pause(page, _step, WINDOW_S)
    return {
        "bench": "browser_descent_fps",
        "case": f"Lloyd N={n} {RES}^2",
        "fps": round(fps, 1),
        "goal_fps": 10,
        "pause_click_s": round(latency, 2),
        "peer": None,
        "peer_s": None,
        "ratio": None,
    }


def main() -> None:
    sizes = [int(float(a)) for a in sys.argv[1:]] or [1000]
    with tempfile.TemporaryDirectory() as tmp:
        png = _target_png(Path(tmp))

        def one(page, url: str, n: int) -> dict:
            row = measure(page, url, n, png)
            page.screenshot(path=str(Path(tmp).parent / f"gmmot_descent_fps_{n}.png"))
            return row

        measure_pages(one, sizes)


if __name__ == "__main__":
    main()
