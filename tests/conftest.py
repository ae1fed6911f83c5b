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


def random_spd(rng: np.random.Generator, n: int, cond: float = 10.0) -> np.ndarray:
    """``n`` random SPD 2x2 matrices with condition number ``cond`` -> ``[n, 2, 2]``."""
    theta = rng.uniform(0, np.pi, n)
    scale = rng.uniform(0.2, 3.0, n)
    rot = np.stack([np.cos(theta), -np.sin(theta), np.sin(theta), np.cos(theta)], -1)
    rot = rot.reshape(n, 2, 2)
    eig = np.stack([scale, scale / cond], -1)
    return np.einsum("nij,nj,nkj->nik", rot, eig, rot)
