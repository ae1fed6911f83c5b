"""A screen's animation clock: one session-scoped periodic callback, the flow control of
its frames, and whether the session's browser tab is still connected."""

from __future__ import annotations

import time
from collections.abc import Callable

import panel as pn

ACK_TIMEOUT_S = 2.0  # without an echo from the browser for this long, send the next frame anyway


class Playback:
    """Calls ``tick`` every ``period`` ms while started; made on the first start (inside
    the session) and stopped when the session is destroyed."""

    def __init__(self, tick: Callable[[], None], period: int):
        self._tick = tick
        self._period = period
        self._callback = None

    def start(self) -> None:
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(
                self._tick, period=self._period, start=False
            )
            # only stop: the session's document is being torn down, nothing is redrawn
            pn.state.on_session_destroyed(lambda _ctx: self.stop())
        self._callback.start()

    def stop(self) -> None:
        if self._callback is not None and self._callback.running:
            self._callback.stop()

    @property
    def period(self) -> int:
        return self._period

    @period.setter
    def period(self, ms: int) -> None:
        self._period = ms
        if self._callback is not None:
            self._callback.period = ms


class _Echo(pn.widgets.IntInput):
    """A hidden counter the browser writes back. Panel delays browser events by 50 ms
    (``Syncable._debounce``) to merge bursts; an echo is one event, so it goes at once."""

    _debounce = 0


class FrameFlow:
    """Flow control between a screen's frames and the browser: the browser echoes each
    frame's number after it painted it, and :meth:`ready` says whether the last one came
    back (or :data:`ACK_TIMEOUT_S` passed); ``ahead = 1`` lets the server compute the
    next frame while the browser paints this one. Without it a slow browser queues frames and
    clicks wait behind the queue (measured on the descent screen: a Pause click took
    6.4 s). ``widgets`` must be in the page (hidden). The browser also keeps the arrival
    times of the last frames in ``window.gmmotFrames`` (read by the load benchmark)."""

    def __init__(self, on_drawn: Callable[[], None], ahead: int = 0):
        self.ahead = ahead
        self.sent = pn.widgets.IntInput(value=0, visible=False)
        self.drawn = _Echo(value=0, visible=False)
        self.sent.jscallback(
            args={"drawn": self.drawn},
            value="const n = cb_obj.value; "
            "const t = (window.gmmotFrames ||= []); t.push(performance.now()); "
            "if (t.length > 4000) t.splice(0, 2000); "
            "requestAnimationFrame(() => setTimeout(() => { drawn.value = n; }, 0));",
        )
        self.sent_at = 0.0
        self.drawn.param.watch(lambda _e: on_drawn(), "value")

    @property
    def widgets(self) -> tuple:
        return self.sent, self.drawn

    def ready(self) -> bool:
        """The browser painted the last frame but ``ahead`` (or has not answered for 2 s:
        go on slowly)."""
        return (
            self.drawn.value >= self.sent.value - self.ahead
            or time.monotonic() - self.sent_at > ACK_TIMEOUT_S
        )

    def due(self, period_ms: float) -> bool:
        """At least ``period_ms`` passed since the last frame was sent."""
        return time.monotonic() - self.sent_at >= period_ms / 1000

    def mark_sent(self) -> None:
        """Call after a frame's updates: the browser will echo its number."""
        self.sent_at = time.monotonic()
        self.sent.value += 1  # never reset


def session_connected() -> bool:
    """False once the browser tab of this session has disconnected (True outside a server)."""
    doc = pn.state.curdoc
    ctx = getattr(doc, "session_context", None) if doc is not None else None
    session = getattr(ctx, "session", None) if ctx is not None else None
    return session is None or session.connection_count > 0
