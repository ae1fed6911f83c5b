"""Entry module of ``panel serve`` (``gmmot serve``): one fresh page per browser session."""

import panel as pn

from gmmot.server_log import log_session_lifetime
from gmmot.shell import build

pn.extension("filedropper", notifications=True)

if pn.state.served:
    log_session_lifetime()
    build().servable()
