"""XLA:CPU settings, applied on import, before JAX starts its backend (importing
``gmmot_core`` first is enough; a backend already running keeps its flags).

Turns XLA:CPU's YNNPACK fusions off (an empty fusion-type list): they run the Laguerre
cells' support-function reductions and the CG gather-reduce slower than XLA's own fused
loops (measured in ``benchmarks/NOTES.md``). Set only for the jaxlib minor this package
pins (an unknown flag aborts the process) and only when the user's ``XLA_FLAGS`` does
not choose it already."""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

YNN_OFF = "--xla_cpu_experimental_ynn_fusion_type="
KNOWN_JAXLIB = ("0.10.",)  # jaxlib versions that have the flag (pyproject pins jax 0.10)


def apply() -> bool:
    """Add :data:`YNN_OFF` to ``XLA_FLAGS``; whether it was added."""
    flags = os.environ.get("XLA_FLAGS", "")
    try:
        jaxlib = version("jaxlib")
    except PackageNotFoundError:
        return False
    if "xla_cpu_experimental_ynn_fusion_type" in flags or not jaxlib.startswith(KNOWN_JAXLIB):
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {YNN_OFF}".strip()
    return True


def peer_environ() -> dict[str, str]:
    """``os.environ`` without :data:`YNN_OFF`: for a subprocess that runs another JAX
    (a peer in its own venv may have a jaxlib without the flag, and gets its defaults)."""
    env = dict(os.environ)
    flags = env.get("XLA_FLAGS", "").replace(YNN_OFF, "").strip()
    if flags:
        env["XLA_FLAGS"] = flags
    else:
        env.pop("XLA_FLAGS", None)
    return env


apply()
