"""XLA:CPU settings, applied on import, before JAX starts its backend (importing
``gmmot_core`` first is enough; a backend already running keeps its flags).

YNNPACK fusions (on by default in jaxlib 0.10) run the Laguerre cells' ``[N, C, V]``
support-function reductions and the CG matvec gather-reduce at 2-4x the time of XLA's own
fused loops: a cold semi-discrete solve at N = 5000 on 64^2 took 1.55 s with them and
1.2 s without (2-core CPU, see benchmarks/semidiscrete.py). An empty fusion-type list
turns them off. Set only for the jaxlib minor this package pins (an unknown flag aborts
the process) and only when the user's ``XLA_FLAGS`` does not choose it already."""

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
