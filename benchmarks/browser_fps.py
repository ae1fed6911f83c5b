"""Frames per second of the coupled-EM screen in a real browser (Debian chromium).

Starts ``panel serve`` like the quick start, opens ``/main?n=N`` in headless chromium,
and counts the frames the page shows over a fixed window while playing at the
"target frames per second" slider's default (20). Also times a Pause click while playing
(how quickly the page answers). The counts come from the frame counter the user sees,
so they include the server step, the document patches and the browser's rendering.
There is no peer for this one (OTT and POT have no viewer): the goal is 15 fps at 1e4.

Usage: python benchmarks/browser_fps.py [N ...]   (default 1e4 1e5)
"""

from __future__ import annotations

import re
import sys

from served import measure_pages, rate_and_pause

WINDOW_S = 10.0


def _frame(page) -> int:
    text = page.get_by_text(re.compile(r"frame \d+")).first.inner_text()
    return int(re.search(r"frame\s+(\d+)", text).group(1))


def measure(page, url: str, n: int) -> dict:
    page.goto(f"{url}?n={n}")
    page.get_by_text(re.compile(r"frame \d+")).first.wait_for(timeout=120_000)
    start = _frame(page)
    while _frame(page) < start + 5:  # warm: the session is live and plotting
        page.wait_for_timeout(200)
    fps, latency = rate_and_pause(page, _frame, WINDOW_S)
    return {
        "bench": "browser_fps",
        "case": f"N={n:.0e} per cloud".replace("+0", ""),
        "fps": round(fps, 1),
        "goal_fps": 15 if n <= 10_000 else None,
        "pause_click_s": round(latency, 2),
        "peer": None,
        "peer_s": None,
        "ratio": None,
    }


def main() -> None:
    measure_pages(measure, [int(float(a)) for a in sys.argv[1:]] or [10_000, 100_000])


if __name__ == "__main__":
    main()
