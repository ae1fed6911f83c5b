"""JAX's persistent compilation cache for the server and its warm-up child, configured on
import: ``GMMOT_JAX_CACHE`` (default ``~/.cache/gmmot/jax``; ``off`` disables it)."""

import os

import jax

CACHE_DIR = os.environ.get(
    "GMMOT_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache/gmmot/jax")
)
if CACHE_DIR != "off":
    jax.config.update("jax_compilation_cache_dir", CACHE_DIR)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
