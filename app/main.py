"""Entry module for ``panel serve app/main.py``: one fresh page per browser session."""

import panel as pn

from app.shell import build

pn.extension("filedropper", notifications=True)

if pn.state.served:
    build().servable()
