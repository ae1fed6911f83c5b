"""Server log hygiene: a frame sent to a tab that has just closed is not an error."""

from __future__ import annotations

import logging

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

__all__ = ["ClosedTabFilter", "quiet_closed_tabs"]


class ClosedTabFilter(logging.Filter):
    """asyncio's "Task exception was never retrieved" for a frame written to a websocket
    whose tab has just closed (Panel dispatches frames as tasks nobody awaits): expected,
    not an error. One INFO line instead of a traceback; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, WebSocketClosedError | StreamClosedError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args, record.exc_info = "frame for a closed tab dropped", (), None
        return True


def quiet_closed_tabs() -> None:
    """Install :class:`ClosedTabFilter` on the asyncio logger (once per process)."""
    log = logging.getLogger("asyncio")
    if not any(isinstance(f, ClosedTabFilter) for f in log.filters):
        log.addFilter(ClosedTabFilter())
