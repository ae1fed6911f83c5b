"""A screen's animation clock: one session-scoped periodic callback."""

from __future__ import annotations

from collections.abc import Callable

import panel as pn


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
