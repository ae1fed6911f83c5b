"""The seed notebooks of ``examples/`` run top to bottom in a kernel (nbclient), through
the public API only, and end with the interactive view (the browser side of one is
tests/browser/test_jupyterlab.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
VIEW_MIME = "application/vnd.holoviews_exec.v0+json"  # a Panel object shown in the cell

# what each notebook's headless cell prints, checked against what it should find
EXPECT = {
    "fitting_coupled_gmms": r"EM iterations: 30 \| status: ok",
    "gmm_barycenters": r"converged: True",
    "fitting_a_gmm_via_w2": r"steps: 40 \| status: ok",
}


def test_every_example_is_checked():
    assert sorted(p.stem for p in EXAMPLES.glob("*.ipynb")) == sorted(EXPECT)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECT))
def test_example_runs_top_to_bottom(name):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs for c in code), "examples are committed without outputs"
    NotebookClient(nb, timeout=600, kernel_name="python3").execute()  # raises on an error
    text = "".join(o.get("text", "") for c in code for o in c.outputs)
    assert re.search(EXPECT[name], text), text
    if name == "fitting_a_gmm_via_w2":  # what its text says: W2 wins in W2, EM in likelihood
        w2 = re.search(r"objective \(W2² \+ mass off\): W2 fit (\S+), EM (\S+)", text)
        ll = re.search(r"log-likelihood: W2 fit (\S+), EM (\S+)", text)
        assert float(w2[1]) < float(w2[2]) and float(ll[1]) < float(ll[2]), text
    assert "Traceback" not in text and "WARNING" not in text, text
    shown = [list(o.get("data", {})) for o in code[-1].outputs]
    assert any(VIEW_MIME in mimes for mimes in shown), shown
