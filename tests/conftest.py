"""Shared fixtures: paths to the peers' reference outputs, x64 switch, RNG."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import jax
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference() -> Path:
    if not REFERENCE.is_dir():
        pytest.fail(f"reference data missing: {REFERENCE} (../shared/reference beside the repo)")
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
