"""Param models: the knobs of each screen, with bounds and docs. No plotting here."""

from __future__ import annotations

import numpy as np
import param

from gmmot_runs.coupled_em import PRESETS, preset_clouds


class DataSource(param.Parameterized):
    """Where the two point clouds come from (a built-in preset and its settings)."""

    preset = param.Selector(
        default="demo pair", objects=list(PRESETS), doc="Built-in pair of 2D clouds."
    )
    n = param.Integer(
        default=2000, bounds=(10, 1_000_000), doc="Points per cloud drawn from the generator."
    )
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), doc="Random seed of the draw.")
    shift = param.Number(
        default=3.0, bounds=(-20.0, 20.0), doc="random pair: shift of cloud 1 along x."
    )
    rotation = param.Number(
        default=30.0, bounds=(-180.0, 180.0), doc="random pair: rotation of cloud 1 (degrees)."
    )
    reweight = param.Number(
        default=0.5,
        bounds=(0.0, 1.0),
        doc="random pair: 0 keeps the component masses, 1 reverses them.",
    )

    def spec(self) -> dict:
        """The preset and the parameters it uses (the ``data`` field of a run spec)."""
        return {"preset": self.preset} | {p: getattr(self, p) for p in PRESETS[self.preset]}

    def clouds(self) -> tuple[np.ndarray, np.ndarray]:
        """The two clouds ``([N, 2], [N, 2])`` float32 for the current settings."""
        spec = self.spec()
        return preset_clouds(spec.pop("preset"), **spec)
