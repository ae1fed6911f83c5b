"""Server log hygiene: a frame sent to a tab that has just closed is not an error; each
session's start and release is one INFO line with the count of live sessions."""

from __future__ import annotations

import ctypes
import gc
import logging

import panel as pn
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

__all__ = ["ClosedTabFilter", "log_session_lifetime", "quiet_closed_tabs"]

LOG = logging.getLogger("gmmot.sessions")
LOG.setLevel(logging.INFO)  # panel serve leaves the root logger at WARNING


class ClosedTabFilter(logging.Filter):
    """asyncio's "Task exception was never retrieved" for a frame written to a websocket
    whose tab has just closed (Panel dispatches frames as tasks nobody awaits): expected,
    not an error. One INFO line instead of a traceback; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, WebSocketClosedError | StreamClosedError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args, record.exc_info = "frame for a closed tab dropped", (), None
        elif isinstance(exc, AssertionError) and _raised_in(exc, "bokeh/server/connection.py"):
            # a tab closed before its session was set up: Bokeh asserts on the close
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "tab closed before its session started", ()
            record.exc_info = None
        return True


def _raised_in(exc: BaseException, path: str) -> bool:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename.replace("\\", "/").endswith(path)


def quiet_closed_tabs() -> None:
    """Install :class:`ClosedTabFilter` on the asyncio and tornado loggers (once)."""
    for name in ("asyncio", "tornado.application"):
        log = logging.getLogger(name)
        if not any(isinstance(f, ClosedTabFilter) for f in log.filters):
            log.addFilter(ClosedTabFilter())


def _live(ctx) -> int:
    """Live sessions other than ``ctx``'s."""
    return sum(other.id != ctx.id for other in ctx.server_context.sessions)


def _trim_heap() -> None:
    """Hand freed heap pages back to the system (glibc's ``malloc_trim``; else nothing).
    It returns only what glibc holds free: most of a released session's memory stays
    with Python's and XLA's allocators and is reused by later sessions (load test)."""
    process = ctypes.CDLL(None)  # the symbols already loaded, libc's among them
    if hasattr(process, "malloc_trim"):
        process.malloc_trim(0)


def _released(ctx) -> None:
    # this session's document is gone: collect its reference cycles now (plots, param
    # watchers) rather than at the next threshold, and return the pages they held
    gc.collect()
    _trim_heap()
    LOG.info("session %s released (%d live)", ctx.id, _live(ctx))


def log_session_lifetime() -> None:
    """Log this session's start now and its release when Bokeh destroys it (no-op
    outside a server). The load test reads these lines to know when all are gone."""
    ctx = pn.state.curdoc.session_context if pn.state.curdoc is not None else None
    if ctx is None or getattr(ctx, "server_context", None) is None:
        return
    LOG.info("session %s opened (%d live)", ctx.id, _live(ctx) + 1)
    pn.state.on_session_destroyed(_released)
