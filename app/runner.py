"""Per-session owner of the coupled-EM solver state: one frame = one jitted call + one transfer.

A ``CoupledEMRunner`` lives in one browser session (never at module level). It keeps the
device state, the last good host snapshot (restored when a frame diverges), and turns
knob changes into new traced leaves, so moving a slider never recompiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.compiled import frame, initial_mixtures
from gmmot_core import coupled_em as ce
from gmmot_core.sinkhorn import tau_from_rho


@dataclass
class Knobs:
    """Host-side knob values (the UI's units): rho = inf means balanced."""

    epsilon: float = 1e-2
    rho: float = 1.0
    balanced: bool = False
    weight_transport: float = 0.1
    learning_rate: float = 1e-3

    @property
    def tau(self) -> float:
        if self.balanced or not np.isfinite(self.rho):
            return 1.0
        return float(tau_from_rho(self.epsilon, self.rho))

    def to_core(self) -> ce.Knobs:
        return ce.Knobs.make(self.epsilon, self.tau, self.weight_transport, self.learning_rate)


@dataclass
class Structure:
    """Settings that change array shapes or the compiled program (a change re-initialises)."""

    k: int = 3
    m_steps: int = 20
    em_per_frame: int = 1
    trace_length: int = 2048

    def config(self) -> ce.CoupledEMConfig:
        return ce.CoupledEMConfig(
            em_steps=self.em_per_frame,
            m_steps=self.m_steps,
            warm_start=True,
            trace_length=self.trace_length,
        )


@dataclass
class CoupledEMRunner:
    """Solver state for one session; ``step()`` advances and returns the host view."""

    points0: np.ndarray
    points1: np.ndarray
    weights0: np.ndarray | None = None
    weights1: np.ndarray | None = None
    knobs: Knobs = field(default_factory=Knobs)
    structure: Structure = field(default_factory=Structure)
    seed: int = 0

    def __post_init__(self) -> None:
        self.reset()

    # -- lifecycle -----------------------------------------------------------------
    def reset(self) -> dict:
        """Back to the initial mixtures (kmeans++ + EM on the pooled clouds)."""
        self._config = self.structure.config()
        self._data = ce.PairData.make(self.points0, self.points1, self.weights0, self.weights1)
        g0, g1 = initial_mixtures(
            self.points0, self.points1, self.structure.k, self.seed, self.weights0, self.weights1
        )
        self.initial = (g0, g1)
        self._state = ce.init(g0, g1, self.knobs.to_core(), self._config)
        self._state, self.view = frame(self._state, self._data, self._config, advance=False)
        return self.view

    def set_knobs(self, **values) -> None:
        """Change continuous knobs: takes effect at the next frame, no recompilation."""
        for name, value in values.items():
            setattr(self.knobs, name, value)
        self._state = self._state._replace(knobs=self.knobs.to_core())

    def set_structure(self, **values) -> dict:
        for name, value in values.items():
            setattr(self.structure, name, value)
        if "k" in values:
            return self.reset()
        self._config = self.structure.config()
        return self.view

    # -- frames ----------------------------------------------------------------------
    def step(self) -> dict:
        """One animation frame (``em_per_frame`` EM iterations).

        A diverging update never lands: the core keeps the last good mixtures and says
        so in ``view["messages"]`` / ``view["rolled_back"]`` (the UI then pauses).
        """
        self._state, self.view = frame(self._state, self._data, self._config, advance=True)
        return self.view


__all__ = ["CoupledEMRunner", "Knobs", "Structure"]
