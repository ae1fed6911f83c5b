"""gmmot_core must not pull in any UI library (it is used headless and by the CLI)."""

import os
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


def test_xla_cpu_flag_is_set_before_jax_starts_and_accepted():
    # an XLA flag the installed jaxlib does not know aborts the process at the first
    # computation; the flag must also reach XLA (set before the backend starts)
    code = (
        "import os, gmmot_core, jax, jax.numpy as jnp;"
        "from gmmot_core._xla_flags import YNN_OFF, peer_environ;"
        "print(YNN_OFF in os.environ['XLA_FLAGS'], YNN_OFF in peer_environ().get('XLA_FLAGS', ''),"
        " float(jax.jit(lambda x: jnp.sum(x * x))(jnp.arange(4.0))))"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.split() == ["True", "False", "14.0"]


def test_a_users_own_xla_choice_is_kept():
    code = "import os, gmmot_core; print(os.environ['XLA_FLAGS'])"
    mine = "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_DOT"
    env = {**os.environ, "XLA_FLAGS": mine}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == mine
