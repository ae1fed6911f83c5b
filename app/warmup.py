"""``panel serve --setup`` hook: compile the core once per process before any session.

Compiled executables are also kept in JAX's persistent cache (``GMMOT_JAX_CACHE``, default
``~/.cache/gmmot/jax``; ``off`` disables it), so a restarted server skips most of the
~2 min warm-up.
"""

import os

import jax

from app.compiled import warm_up
from app.server_log import quiet_closed_tabs

_cache = os.environ.get(
    "GMMOT_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache/gmmot/jax")
)
if _cache != "off":
    jax.config.update("jax_compilation_cache_dir", _cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

warm_up()
quiet_closed_tabs()
