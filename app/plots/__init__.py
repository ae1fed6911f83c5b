"""Plots by view: :mod:`~app.plots.clouds`, :mod:`~app.plots.coupling`,
:mod:`~app.plots.contours`, :mod:`~app.plots.cells`, :mod:`~app.plots.traces`. One
palette for every view and every exported figure: :data:`gmmot_runs.figures.PALETTE`."""
