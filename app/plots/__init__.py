"""Plots by view: :mod:`~gmmot_app.plots.clouds`, :mod:`~gmmot_app.plots.coupling`,
:mod:`~gmmot_app.plots.contours`, :mod:`~gmmot_app.plots.cells`, :mod:`~gmmot_app.plots.traces`. One
palette for every view and every exported figure: :data:`gmmot_runs.figures.PALETTE`."""
