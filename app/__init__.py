"""gmmot explorer: the Panel app around ``gmmot_core`` (served with ``panel serve app/main.py``)."""
