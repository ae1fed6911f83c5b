"""One job at a time off the server's event loop, for a screen of one session.

A job runs in a worker thread (JAX releases the GIL while XLA compiles and runs), so the
page keeps answering; its result is applied on the session's event loop through Bokeh's
thread-safe ``add_next_tick_callback``, holding the document lock only for the draw. A
job that runs longer than :data:`NOTICE_AFTER_S` shows what it does and for how long.
Without a session (tests, scripts) a job runs at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial

import panel as pn

__all__ = ["NOTICE_AFTER_S", "Worker"]

NOTICE_AFTER_S = 0.3


class Worker:
    """Runs ``submit``-ted jobs one at a time; ``notice`` (an Alert) tells of long ones."""

    def __init__(self, notice: pn.pane.Alert):
        self.notice = notice
        self._busy = False
        self._job = 0

    @property
    def busy(self) -> bool:
        return self._busy

    def submit(
        self,
        what: str,
        fn: Callable[[], object],
        done: Callable[[object], None],
        failed: Callable[[Exception], None],
    ) -> bool:
        """Start ``fn()`` unless a job is running (then False); ``done(result)`` or
        ``failed(exception)`` run on the event loop when it ends."""
        if self._busy:
            return False
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:
            try:
                result = fn()
            except Exception as exc:
                failed(exc)
            else:
                done(result)
            return True
        self._busy = True
        self._job += 1
        job, t0 = self._job, time.monotonic()

        def work():
            try:
                result = fn()
            except Exception as exc:  # reported on the loop, never lost in the thread
                then = partial(failed, exc)
            else:
                then = partial(done, result)
            _post(doc, partial(self._finish, then))

        def tell():
            time.sleep(NOTICE_AFTER_S)
            while self._busy and self._job == job:
                text = f"{what} ({time.monotonic() - t0:.0f} s)"
                if not _post(doc, partial(self._show, job, text)):
                    return  # the session is gone
                time.sleep(1.0)

        threading.Thread(target=work, daemon=True, name="gmmot-job").start()
        threading.Thread(target=tell, daemon=True, name="gmmot-notice").start()
        return True

    def _show(self, job: int, text: str) -> None:
        if self._busy and self._job == job:
            self.notice.object = text
            self.notice.visible = True

    def _finish(self, then: Callable[[], None]) -> None:
        self._busy = False
        self.notice.visible = False
        then()


def _post(doc, callback) -> bool:
    """Schedule ``callback`` on the document's event loop; False when the session has
    been released meanwhile (its document no longer takes callbacks: nothing to show)."""
    try:
        doc.add_next_tick_callback(callback)
    except (AttributeError, RuntimeError, ValueError):
        return False
    return True
