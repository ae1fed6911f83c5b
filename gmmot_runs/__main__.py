"""``python -m gmmot_runs replay ...`` = the ``gmmot`` console script."""

from gmmot_runs.cli import main

raise SystemExit(main())
