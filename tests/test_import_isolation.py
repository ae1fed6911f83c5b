"""gmmot_core must not pull in any UI library (it is used headless and by the CLI)."""

import subprocess
import sys

UI = ("panel", "param", "holoviews", "bokeh", "ott", "ot")


def test_core_imports_no_ui_or_oracle():
    code = (
        "import sys, gmmot_core, gmmot_core.sinkhorn, gmmot_core.mixture;"
        f"bad = [m for m in {UI!r} if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"gmmot_core imported: {out.stdout.strip()}"
