"""Param models: the knobs of each screen, with bounds and docs. No plotting here."""

from __future__ import annotations

import numpy as np
import param

from gmmot_core import synthetic

PRESETS = ("demo pair", "moons -> rings")


class DataSource(param.Parameterized):
    """Where the two point clouds come from."""

    preset = param.Selector(
        default=PRESETS[0], objects=list(PRESETS), doc="Built-in pair of 2D clouds."
    )
    n = param.Integer(
        default=2000, bounds=(10, 200_000), doc="Points per cloud drawn from the generator."
    )
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), doc="Random seed of the draw.")

    def clouds(self) -> tuple[np.ndarray, np.ndarray]:
        """The two clouds ``([N0, 2], [N1, 2])`` float32 for the current settings."""
        if self.preset == "demo pair":
            return synthetic.demo_pair(self.n, self.seed)
        return synthetic.moons(self.n, self.seed), synthetic.rings(self.n, self.seed + 1)
