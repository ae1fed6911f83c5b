"""``gmmot serve``: the app served from the installed package, as the quick start serves it.

``panel serve`` of this package's ``main.py`` with the ``warmup.py`` set-up hook (what a
first page needs is compiled before the first session; the other sizes in a background
child), sessions reaped 60 s after their tab closed, uploads up to the cap in one
websocket message. ``bash .ci/dev serve`` and ``cluster`` start it through here too.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gmmot_core.io import WEBSOCKET_MAX_BYTES

HERE = Path(__file__).resolve().parent


def serve_command(port: int, address: str, origins: list[str]) -> list[str]:
    """The ``panel serve`` command line: the page's browser origins are ``localhost`` and
    ``127.0.0.1`` at ``port``, plus ``origins`` (``host:port``, e.g. behind a proxy)."""
    allowed = [f"localhost:{port}", f"127.0.0.1:{port}", *origins]
    return [
        sys.executable, "-m", "panel", "serve", str(HERE / "main.py"),
        "--setup", str(HERE / "warmup.py"), "--port", str(port), "--address", address,
        *(arg for origin in allowed for arg in ("--allow-websocket-origin", origin)),
        "--liveness", "--num-procs", "1",
        "--check-unused-sessions", "5000", "--unused-session-lifetime", "60000",
        "--websocket-max-message-size", str(WEBSOCKET_MAX_BYTES),
    ]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=5006, help="port (default 5006)")
    parser.add_argument(
        "--address",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 to expose it)",
    )
    parser.add_argument(
        "--origin",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="a further origin the browser may come from (a proxy's); repeatable",
    )


def serve(args: argparse.Namespace) -> None:
    """Replace this process with ``panel serve`` (Ctrl-C stops the server)."""
    cmd = serve_command(args.port, args.address, args.origin)
    sys.stderr.write(
        f"gmmot: compiling what the first page needs (~30 s on 2 cores, less with the cache);"
        f" then open http://localhost:{args.port}/main\n"
    )
    sys.stderr.flush()
    os.execv(cmd[0], cmd)
