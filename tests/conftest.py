"""Shared fixtures: paths to the peers' reference outputs, x64 switch, RNG."""

from __future__ import annotations

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
