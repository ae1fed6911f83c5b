"""Host side of gmmot: recorded runs, their parameter files, replay and static figures.

Built on :mod:`gmmot_core` (never the reverse). One spec envelope and validator
(:mod:`gmmot_runs.spec`) with field-named errors; one module per run kind. The W2 fit
(:mod:`gmmot_runs.w2_fit`) lives here; coupled EM, descent and barycenter runs are still
in ``gmmot_core`` (``runs``, ``descent_run``, ``barycenter_run``) until they move.
"""
