"""``python -m gmmot_core replay ...`` = the ``gmmot`` console script."""

from gmmot_core.cli import main

raise SystemExit(main())
