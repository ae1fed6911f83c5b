"""gmmot explorer: the Panel app around ``gmmot_core``, installed as ``gmmot`` (the
folder ``app/``), served by ``gmmot serve``."""
