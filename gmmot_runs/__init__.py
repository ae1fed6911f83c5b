"""Host side of gmmot: recorded runs, their parameter files, replay and static figures.

Built on :mod:`gmmot_core` (never the reverse), with numpy, param, JSON and matplotlib.
:mod:`~gmmot_runs.run` is the one protocol every run kind follows (and ``replay`` of any
parameter file); :mod:`~gmmot_runs.knobs` declares a kind's knobs once. One module per
kind, each with its knob model, its spec (a parameter file) and a run that
replays bit for bit: :mod:`~gmmot_runs.coupled_em`, :mod:`~gmmot_runs.descent`,
:mod:`~gmmot_runs.barycenter`, :mod:`~gmmot_runs.w2_fit`. :mod:`~gmmot_runs.spec`
reads every parameter file with field-named errors, :mod:`~gmmot_runs.figures` draws
every kind, :mod:`~gmmot_runs.cli` is ``gmmot replay``.
"""
