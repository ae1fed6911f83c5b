"""The examples in a real JupyterLab (headless, in Debian's chromium): the coupled-GMMs
notebook opened and run top to bottom draws the coupled-EM view on the notebook's own
clouds, Play advances EM, and an export downloads the run's parameters."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, _free_port, stop, wait_until_up

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``jupyter lab`` on a folder holding a copy of the examples; its URL."""
    work = tmp_path_factory.mktemp("lab")
    for nb in EXAMPLES.glob("*.ipynb"):
        shutil.copy(nb, work)
    port = _free_port()
    cache = os.environ.get("GMMOT_RUN_JAX_CACHE") or tempfile.mkdtemp(prefix="gmmot-jax-")
    env = dict(
        os.environ,
        GMMOT_JAX_CACHE=cache,  # the kernel compiles into this run's cache, as the server
        JUPYTER_CONFIG_DIR=str(work / ".config"),  # no user settings of this machine
        JUPYTER_RUNTIME_DIR=str(work / ".runtime"),
    )
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
        f"--port={port}", "--ServerApp.ip=127.0.0.1", "--ServerApp.token=",
        "--ServerApp.password=", f"--ServerApp.root_dir={work}",
    ]  # fmt: skip
    ARTIFACTS.mkdir(exist_ok=True)
    with (ARTIFACTS / "jupyterlab.log").open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/api/status", proc, 120, "jupyter lab", ARTIFACTS / "jupyterlab.log")
        yield url
    finally:
        stop(proc, 20)


def test_the_coupled_gmms_example_runs_in_jupyterlab(page, lab, shot):
    page.goto(f"{lab}/lab/tree/fitting_coupled_gmms.ipynb")
    expect(page.locator(".jp-Notebook").first).to_be_visible(timeout=60_000)
    # Run All before the kernel is ready ran nothing (1 run in 3)
    expect(page.get_by_text(re.compile(r"\(ipykernel\) \| Idle"))).to_be_visible(timeout=60_000)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()
    # the interactive view: the last cell of the notebook shown (a restored workspace may
    # hold other notebooks' panels, hidden)
    shown = page.locator(".jp-NotebookPanel").locator("visible=true")
    last = shown.locator(".jp-Cell").last
    expect(last.locator(".jp-InputArea-prompt")).to_have_text(
        re.compile(r"\[\d+\]"), timeout=240_000
    )
    last.scroll_into_view_if_needed()
    counter = last.get_by_text(re.compile(r"EM iteration \d+"))
    expect(counter).to_have_text(re.compile(r"frame 0 · EM iteration 0"), timeout=60_000)
    # the notebook's clouds, not the app's demo pair (1000 points each)
    expect(last.get_by_text("cloud 0 from your arrays (1000 points)", exact=False)).to_be_visible()
    # the figures are drawn: Bokeh canvases with pixels set
    drawn = last.locator("canvas").evaluate_all(
        "cs => cs.filter(c => c.width > 100 && c.getContext('2d').getImageData("
        "0, 0, c.width, c.height).data.some(v => v !== 0)).length"
    )
    assert drawn >= 4, drawn
    last.get_by_role("button", name=re.compile("Play")).click()
    expect(counter).to_have_text(re.compile(r"EM iteration ([3-9]|\d\d+)"), timeout=60_000)
    last.get_by_role("button", name=re.compile("Pause")).click()
    no_news = page.get_by_role("button", name="No", exact=True)  # JupyterLab's news prompt
    if no_news.count():
        no_news.click()
    with page.expect_download(timeout=60_000) as dl:
        last.get_by_role("button", name=re.compile(r"parameters \(JSON\)")).click()
    params = json.loads(dl.value.path().read_text())
    assert params["kind"] == "coupled_em" and params["iterations"] >= 3
    assert len(params["data"]["points0"]) == 1000 and params["structure"]["k"] == 3
    assert params["knobs"]["balanced"] is False and params["knobs"]["epsilon"] == 0.01
    counter.scroll_into_view_if_needed()
    shot(page, "jupyterlab_fitting_coupled_gmms")
