"""Host side of gmmot: recorded runs, their parameter files, replay and static figures.

Built on :mod:`gmmot_core` (never the reverse), with numpy, JSON and matplotlib. One
module per run kind, each with its spec (a parameter file), a recorded run that replays
bit for bit, and its results: :mod:`~gmmot_runs.coupled_em`, :mod:`~gmmot_runs.descent`,
:mod:`~gmmot_runs.barycenter`, :mod:`~gmmot_runs.w2_fit`. :mod:`~gmmot_runs.spec`
reads every parameter file with field-named errors, :mod:`~gmmot_runs.figures` draws
every kind, :mod:`~gmmot_runs.cli` is ``gmmot replay``.
"""
