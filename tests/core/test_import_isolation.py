"""The layers: gmmot_core (algorithms) imports no UI, oracle or host-side module, nor
param; gmmot_runs (host side, the CLI) no UI or oracle (its knob models are param's,
which has no UI dependency: the split of holoviz's attractors example)."""

import os
import subprocess
import sys

UI = ("panel", "holoviews", "bokeh", "ott", "ot")


def _imported_after(package: str, forbidden: tuple[str, ...]) -> list[str]:
    """Import every module of ``package`` in a fresh interpreter; the forbidden top-level
    packages that ended up in ``sys.modules``."""
    code = (
        "import importlib, pkgutil, sys;"
        f"pkg = importlib.import_module({package!r});"
        "[importlib.import_module(m.name) for m in pkgutil.walk_packages(pkg.__path__, "
        "pkg.__name__ + '.') if not m.name.endswith('__main__')];"
        f"print(','.join(m for m in {forbidden!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_core_imports_no_ui_oracle_or_host_side():
    """Every gmmot_core module (semidiscrete included): no UI library, no oracle, no
    param, and nothing of the host side (gmmot_runs, matplotlib, the app)."""
    bad = _imported_after("gmmot_core", (*UI, "param", "gmmot_runs", "gmmot", "matplotlib"))
    assert bad == [], f"gmmot_core imported: {bad}"


def test_runs_import_no_ui_or_oracle():
    """Every gmmot_runs module (the CLI included) runs headless: no UI library, no oracle."""
    bad = _imported_after("gmmot_runs", (*UI, "gmmot"))
    assert bad == [], f"gmmot_runs imported: {bad}"


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
