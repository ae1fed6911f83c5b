"""gmmot explorer: the Panel app around ``gmmot_core`` (the folder ``app/``, installed as
``gmmot``), served by ``gmmot serve``, and in a notebook one call per screen on your own
data (:mod:`gmmot.notebook`)::

    import gmmot
    gmmot.coupled_em(x0, x1, epsilon=0.1, balanced=False)

The notebook calls load Panel on first use: ``import gmmot`` alone stays light (the
command line imports :mod:`gmmot.serve` through it).
"""

_NOTEBOOK = ("View", "barycenter", "coupled_em", "descent", "w2_fit")

__all__ = list(_NOTEBOOK)


def __getattr__(name: str):
    if name in _NOTEBOOK:
        from gmmot import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'gmmot' has no attribute {name!r}")
