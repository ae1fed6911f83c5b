"""The explorer in a notebook: one call per screen on your own data, shown inline.

    import gmmot
    view = gmmot.coupled_em(x0, x1, epsilon=0.1, balanced=False)
    view                        # the screen: figures, controls, Play / Pause, exports
    view.run.view["gmm0"]       # in a later cell: the run's arrays, as it is now

Each call takes the screen's knobs and settings as keyword arguments, checked by the
same models as the app's controls and URL (a value out of bounds, or an unknown name,
raises ``ValueError`` naming it), and returns a :class:`View`: displayed, it is the
screen with its controls beside it; ``view.run`` is the live run (a
:class:`gmmot_runs.run.Run`: ``view``, ``results()``, ``spec()``, ``figure()``).
A knob given between a slider's grid values (epsilon 0.05) runs as given; its slider
shows the nearest grid value until it is moved.
"""

from __future__ import annotations

import numpy as np
import panel as pn

from gmmot import jax_cache  # noqa: F401  (compiled programs kept across kernels, as the app's)
from gmmot.screens.barycenter import BarycenterScreen
from gmmot.screens.coupled_em import CoupledEMScreen
from gmmot.screens.descent import DescentScreen
from gmmot.screens.w2_fit import W2FitScreen
from gmmot_core.io import points_from_arrays
from gmmot_core.targets import gmm_image, mixture_in_box
from gmmot_runs.coupled_em import CoupledEMRun, Structure
from gmmot_runs.descent import check_target
from gmmot_runs.knobs import Knobs
from gmmot_runs.w2_fit import W2FitRun

__all__ = ["View", "barycenter", "coupled_em", "descent", "w2_fit"]

SIDEBAR_WIDTH = 330


class View(pn.viewable.Viewer):
    """A screen for a notebook cell: its figures, and its controls (the app's sidebar)
    beside them or below."""

    def __init__(self, screen, **params):
        super().__init__(**params)
        self.screen = screen
        self._layout = None

    @property
    def run(self):
        """The run shown now (a change of a setting on screen builds a new one)."""
        return self.screen.run

    def results(self) -> dict:
        """The results file of the run shown (plain JSON types), as the export gives it."""
        return self.screen.exported_run().results()

    def _repr_mimebundle_(self, include=None, exclude=None):
        _extension()  # in the cell that shows the view: a view never shown costs nothing
        return super()._repr_mimebundle_(include, exclude)

    def __panel__(self):
        if self._layout is None:  # one layout: a view shown twice shows the same widgets
            controls = pn.Column(*self.screen.sidebar(), width=SIDEBAR_WIDTH)
            # the controls beside the figures where the cell is wide enough, below them
            # where it is not (a notebook beside JupyterLab's file browser)
            self._layout = pn.FlexBox(
                self.screen, controls, flex_wrap="wrap", sizing_mode="stretch_width"
            )
        return self._layout


#: Panel's JavaScript goes inline in the cell that shows a view, so that a page needs no
#: internet (~7 MB of a saved notebook per such cell); False: from Panel's CDN
INLINE = True


def _extension() -> None:
    """Load Panel's notebook support in the cell that shows a view: each time, as a page
    opened again on the same kernel has to load it again when the cell runs again."""
    pn.extension("filedropper", notifications=True, inline=INLINE)
    # the screens' figures stretch in both directions inside rows that stretch in width:
    # the app's layout, which Panel warns of in each cell's output otherwise
    pn.config.respect_explicit_sizing = True


def _models(screen, values: dict, settings: tuple[str, ...] = ()) -> tuple[Knobs, Knobs]:
    """``values`` split into the screen's knob model and its settings model (only the
    names in ``settings``), each checked by its model."""
    names = (*screen.Knobs.names(), *settings)
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"unknown argument {unknown[0]!r}: expected one of {', '.join(names)}")
    knobs, chosen = screen.Knobs(), screen.Settings()
    knobs.update(**{n: v for n, v in values.items() if n in screen.Knobs.names()})
    chosen.update(**{n: v for n, v in values.items() if n in settings})
    return knobs, chosen


def _float32(points, weights) -> tuple:
    """A cloud as coupled EM runs it (float32, as an uploaded one)."""
    return points.astype(np.float32), None if weights is None else weights.astype(np.float32)


def coupled_em(points0, points1, weights0=None, weights1=None, **values) -> View:
    """Coupled EM on two clouds ``points [N, 2]`` (``weights [N]`` >= 0 optional).
    ``values``: the knobs (``epsilon``, ``rho``, ``balanced``, ``weight_transport``,
    ``learning_rate``) and ``k``, ``m_steps``, ``em_per_frame``."""
    knobs, settings = _models(CoupledEMScreen, values, CoupledEMScreen.Settings.names())
    clouds = [
        _float32(*points_from_arrays(p, w)[:2])
        for p, w in ((points0, weights0), (points1, weights1))
    ]
    structure = Structure(**settings.values())
    run = CoupledEMRun(
        clouds[0][0], clouds[1][0], clouds[0][1], clouds[1][1], knobs, structure,
        data={"inline": True},
    )  # fmt: skip
    return View(CoupledEMScreen(run=run))


def descent(image=None, mixture=None, **values) -> View:
    """Dirac descent / Lloyd towards ``image`` (``[H, W]`` values >= 0, the mass of each
    pixel, row 0 at the top as a picture shows) or ``mixture`` (``(weights [K], means
    [K, 2], covs [K, 2, 2])``, moved into the unit square, on a 128² raster).
    ``values``: the knobs (``lr``, ``lloyd``, ``steps_per_frame``) and ``n``, ``init``,
    ``seed``."""
    if (image is None) == (mixture is None):
        raise ValueError("give an image or a mixture")
    knobs, settings = _models(DescentScreen, values, ("n", "init", "seed"))
    if mixture is not None:
        w, m, c = (np.asarray(x, np.float64) for x in mixture)
        box = mixture_in_box(w, m, c)
        picture = gmm_image(box["means"], box["covs"], box["weights"], (128, 128))[0]
    else:
        picture = np.asarray(image, np.float64)
        if picture.ndim != 2:
            raise ValueError(f"expected a 2D image, got shape {picture.shape}")
        picture = picture[::-1].T.copy()  # [x, y] with y up, as an uploaded picture
        # the parameter file's check: a run its exported file could not replay is refused
        check_target({"values": picture})
    return View(DescentScreen(picture=picture, settings=settings, knobs=knobs))


def barycenter(mixtures, lambdas=None, **values) -> View:
    """The barycenter of ``mixtures`` (2 to 8 of ``(weights [K], means [K, 2], covs [K, 2,
    2])``) with barycentric weights ``lambdas`` (default equal). ``values``: the knobs
    (``epsilon``, ``steps_per_frame``) and ``bar_size``, ``seed``."""
    knobs, settings = _models(BarycenterScreen, values, ("bar_size", "seed"))
    given = [tuple(np.asarray(x, np.float64) for x in g) for g in mixtures]
    screen = BarycenterScreen(
        pair_source=lambda: given, pair_label="your mixtures", settings=settings,
        knobs=knobs, lambdas=lambdas,
    )  # fmt: skip
    return View(screen)


def w2_fit(points, weights=None, **values) -> View:
    """A mixture fitted to ``points [N, 2]`` (``weights [N]`` >= 0 optional) by the exact
    semi-discrete W2², beside EM's fit from the same start. ``values``: the knobs
    (``learning_rate``, ``steps_per_frame``) and ``k``, ``res``, ``seed``."""
    knobs, settings = _models(W2FitScreen, values, ("k", "res", "seed"))
    pts, w, _ = points_from_arrays(points, weights)
    cloud = {"points": pts.astype(np.float64).tolist()}
    if w is not None:
        cloud["weights"] = w.astype(np.float64).tolist()
    run = W2FitRun(cloud, settings.k, settings.res, settings.seed)
    run.set(**knobs.values())
    return View(W2FitScreen(run=run))
