"""A tab closing early is not an error: the log says so in one line, and a worker whose
session was released stops posting to its document."""

import logging
import sys

from gmmot.server_log import ClosedTabFilter
from gmmot.worker import _post


def test_a_tab_closed_before_its_session_is_one_info_line():
    import bokeh.server.connection as connection

    class Early(connection.ServerConnection):
        def __init__(self):  # the state of a connection closed before its session existed
            self._session = None

    try:
        _ = Early().session
    except AssertionError:
        record = logging.LogRecord(
            "tornado.application", 40, "ws", 1, "Uncaught", (), sys.exc_info()
        )
    assert ClosedTabFilter().filter(record)
    assert record.levelname == "INFO" and record.exc_info is None
    other = logging.LogRecord("tornado.application", 40, "ws", 1, "x", (), None)
    try:
        raise AssertionError("elsewhere")
    except AssertionError:
        other.exc_info = sys.exc_info()
    ClosedTabFilter().filter(other)
    assert other.levelname == "ERROR" and other.exc_info is not None  # real errors stay


def test_posting_to_a_released_document_is_refused_quietly():
    class Released:
        def add_next_tick_callback(self, _cb):
            raise AttributeError("'DocumentCallbackManager' object has no attribute ...")

    calls = []

    class Live:
        def add_next_tick_callback(self, cb):
            calls.append(cb)

    ran = []
    assert _post(Released(), ran.append) is False
    assert _post(Live(), lambda: ran.append("ran")) is True and len(calls) == 1
    calls[0]()  # the posted callback runs the given one (inside the session's curdoc)
    assert ran == ["ran"]
