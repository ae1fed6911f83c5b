"""The Dirac descent screen in the served page: Laguerre cells drawn, Lloyd steps advance."""

import re
from pathlib import Path

from playwright.sync_api import expect

ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"


def _step(page) -> int:
    text = page.get_by_text(re.compile(r"step \d+ · N")).first.inner_text()
    return int(re.search(r"step\s+(\d+)", text).group(1))


def test_descent_tab_steps_and_plays(page, server_url, shot, server_log, open_tab):
    page.goto(server_url)
    expect(page.get_by_text(re.compile(r"frame \d+")).first).to_be_visible(timeout=60_000)
    open_tab(page, "Dirac descent")
    expect(page.get_by_text(re.compile(r"step 0 · N 200")).first).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Step").click()
    expect(page.get_by_text(re.compile(r"step 1 · N 200")).first).to_be_visible(timeout=30_000)
    page.get_by_role("button", name=re.compile("Play")).click()
    page.wait_for_timeout(4000)
    assert _step(page) >= 5  # Lloyd steps at N=200 take ~60 ms each
    page.get_by_role("button", name=re.compile("Pause")).click()
    expect(page.get_by_role("button", name=re.compile("Play"))).to_be_visible(timeout=30_000)
    page.wait_for_timeout(800)
    shot(page, "dirac_descent_lloyd")
    last = _step(page)
    # issue 42 item 7: the first look-back took 60 s behind a notice naming another frame
    # than the one asked for; item 4: the positions file had no step column and the
    # results another step than the one on screen
    look = page.locator("div", has_text=re.compile(r"^look back")).locator(".noUi-handle").last
    look.focus()
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    shown = page.get_by_text(re.compile(r"looking back at step \d+")).first
    expect(shown).to_be_visible(timeout=60_000)
    asked = int(re.search(r"look back \(frame\):\s*(\d+)", _text(page, r"^look back")).group(1))
    assert asked == last - 3
    expect(page.get_by_text(f"looking back at step {asked}", exact=False).first).to_be_visible(
        timeout=30_000
    )
    notices = page.get_by_text(re.compile(r"the cells of frame")).locator("visible=true")
    assert all(f"frame {asked}:" in t for t in notices.all_inner_texts())
    with page.expect_download() as dl:
        page.get_by_role("button", name=re.compile(r"positions \(CSV\)")).click()
    rows = dl.value.path().read_text().strip().splitlines()
    assert rows[0] == "x,y,step", rows[0]
    assert {r.split(",")[2] for r in rows[1:]} == {str(asked)}
    assert len(rows) == 1 + 200
    shot(page, "dirac_descent_look_back")
    assert "Traceback" not in server_log()


def _text(page, pattern: str) -> str:
    return page.get_by_text(re.compile(pattern)).locator("visible=true").first.inner_text()


def _upload_box_is_not_black(page) -> None:
    """Issue 42 item 11: once "Upload complete", FilePond's image preview laid a
    green-to-dark gradient over the picture (26% of the box near black for a dark ring
    on white). The visible upload box (the descent tab's) must be mostly light: under a
    tenth of its pixels near black (its text and icons are a few percent)."""
    import io

    import numpy as np
    from PIL import Image

    box = page.locator(".filepond--root >> visible=true").first
    expect(box).to_be_visible(timeout=10_000)
    page.wait_for_timeout(1500)  # FilePond's completion animation
    png = box.screenshot()
    (ARTIFACTS_DIR / "descent_upload_box.png").write_bytes(png)
    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"), float)
    assert np.mean(grey < 60) < 0.1, f"{np.mean(grey < 60):.0%} of the upload box is black"


def test_uploaded_image_becomes_the_target(page, server_url, tmp_path, shot, server_log, open_tab):
    """A PNG dropped on the descent tab (chunked upload) is the new target: dark = mass,
    so the Diracs gather on the dark ring; a non-image file is refused, target kept."""
    import numpy as np
    from PIL import Image

    yy, xx = np.mgrid[0:96, 0:128]
    ring = np.abs(np.hypot(xx - 64, yy - 48) - 30) < 6
    png = tmp_path / "ring.png"
    Image.fromarray(np.where(ring, 20, 255).astype(np.uint8), "L").save(png)
    page.goto(server_url)
    expect(page.get_by_text(re.compile(r"frame \d+")).first).to_be_visible(timeout=60_000)
    open_tab(page, "Dirac descent")
    expect(page.get_by_text(re.compile(r"step 0 · N 200")).first).to_be_visible(timeout=30_000)
    upload = page.locator("input[type=file]").nth(2)  # after the two clouds' uploads
    upload.set_input_files(str(png))
    expect(page.get_by_text(re.compile(r"target: ring.png, 128 x 96 pixels"))).to_be_visible(
        timeout=60_000
    )
    _upload_box_is_not_black(page)
    for _ in range(3):
        page.get_by_role("button", name="Step").click()
    expect(page.get_by_text(re.compile(r"step 3 · N 200")).first).to_be_visible(timeout=60_000)
    shot(page, "dirac_descent_uploaded_ring")
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    upload.set_input_files(str(bad))
    rejected = page.get_by_text(re.compile("Image rejected.*previous target is kept"))
    expect(rejected).to_be_visible(timeout=30_000)
    # item 11: the message named a Python class (UnidentifiedImageError)
    assert not re.search(r"[a-z]+Error\b", rejected.inner_text()), rejected.inner_text()
    assert _step(page) == 3
    assert "Traceback" not in server_log()
