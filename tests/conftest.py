"""Shared fixtures: paths to the peers' reference outputs, x64 switch, RNG.

Compiled executables go to JAX's persistent cache, the one the served app uses
(``GMMOT_JAX_CACHE``, default ``~/.cache/gmmot/jax``; ``off`` disables it): test modules
drop their in-memory executables (below), and the same programs compiled again by a later
module, or by the browser tests' server warm-up, are read back instead of recompiled.
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import jax
import numpy as np
import pytest

_CACHE = os.environ.get(
    "GMMOT_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache/gmmot/jax")
)
if _CACHE != "off":
    jax.config.update("jax_compilation_cache_dir", _CACHE)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference"  # the peers' outputs (provenance: its README)


# Files whose tests compile the same programs (same shapes, dtype and static settings):
# one xdist scope each, run in one worker one after the other, so the later files read
# the persistent cache instead of compiling in parallel in the other worker.
SHARED_PROGRAMS = {
    "w2 fit, N=600 K=2 48x48": (
        "tests/core/test_gmm_w2_fit.py",
        "tests/runs/test_w2_fit_run.py",
        "tests/runs/test_assets.py",
        "tests/app/test_notebook.py",
    ),
}
# The longest scopes first (2-core runs, seconds): the last scope to start should be
# short, or one worker idles while the other finishes it.
LONGEST_FIRST = (
    "w2 fit, N=600 K=2 48x48",
    "tests/runs/test_w2_fit_every_k.py",
    "tests/core/test_semidiscrete.py",
    "tests/core/test_padding.py",
    "tests/core/test_cells.py",
    "tests/core/test_coupled_em.py",
    "tests/core/test_w2_gradients.py",
    "tests/core/test_barycenter.py",
)


def _scope(nodeid: str) -> str:
    """The xdist scope of a test: its file, or the :data:`SHARED_PROGRAMS` entry holding it."""
    path = nodeid.split("::", 1)[0]
    return next((g for g, files in SHARED_PROGRAMS.items() if path in files), path)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """The longest scopes first (stable: file order kept within a scope)."""
    rank = {g: i for i, g in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_scope(item.nodeid), len(rank)))


@pytest.hookimpl(optionalhook=True)  # a run without xdist (-p no:xdist) knows no such hook
def pytest_xdist_make_scheduler(config, log):
    """Each worker takes whole scopes (:func:`_scope`): a file's, or a group's, compiled
    programs and module fixtures stay in one process. (xdist's own ``loadgroup`` renames
    node ids, which pytest 9.2 no longer reads: every test was scheduled alone.)"""
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # our order (LONGEST_FIRST), not by test count

    class ScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

    return ScopeScheduling(config, log)


@pytest.fixture(scope="session")
def reference() -> Path:
    if not REFERENCE.is_dir():
        pytest.fail(f"reference data missing: {REFERENCE}")
    return REFERENCE


@pytest.fixture(scope="session")
def load_json(reference):
    def _load(rel: str) -> dict:
        return json.loads((reference / rel).read_text())

    return _load


@pytest.fixture
def x64():
    """Run a test body in float64 (for closed-form checks at tight tolerances)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="module", autouse=True)
def _release_compiled():
    """Drop compiled executables after each test module. Each XLA:CPU executable holds
    its own memory mappings (a semi-discrete solve: ~1,000-2,500), and the whole suite in
    one process passed the kernel's 65,530 (``vm.max_map_count``): the next compile
    segfaulted. Clearing returns them (3,831 -> 521 after two solves)."""
    yield
    jax.clear_caches()
    gc.collect()
