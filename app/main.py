"""Entry module for ``panel serve app/main.py``: one fresh page per browser session."""

import panel as pn

from app.server_log import log_session_lifetime
from app.shell import build

pn.extension("filedropper", notifications=True)

if pn.state.served:
    log_session_lifetime()
    build().servable()
