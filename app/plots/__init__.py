"""Plots by view: :mod:`~gmmot.plots.clouds`, :mod:`~gmmot.plots.coupling`,
:mod:`~gmmot.plots.contours`, :mod:`~gmmot.plots.cells`, :mod:`~gmmot.plots.traces`. One
palette for every view and every exported figure: :data:`gmmot_runs.figures.PALETTE`."""
