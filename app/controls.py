"""Controls every screen shares: export buttons, the play / pause toggle, the warning box."""

from __future__ import annotations

from collections.abc import Callable

import panel as pn

__all__ = ["PlayControls", "download_buttons"]


def download_buttons(items: list[tuple[Callable, str, str]]) -> list[pn.widgets.FileDownload]:
    """One full-width download button per ``(callback, filename, label)``; the file is
    made by the callback when clicked (``embed=False``)."""
    return [
        pn.widgets.FileDownload(
            callback=cb, filename=name, label=label, embed=False, sizing_mode="stretch_width"
        )
        for cb, name, label in items
    ]


class PlayControls:
    """Mixin for a screen with ``playback`` (:class:`~app.playback.Playback`), ``b_play``
    (button), ``alert`` (Alert pane) and the params ``playing`` and ``message``."""

    def _toggle(self, _event=None) -> None:
        if self.playing:
            self._pause()
        else:
            self._play()

    def _play(self) -> None:
        self.playback.start()
        self.playing = True
        self.b_play.label = "❚❚ Pause"

    def _pause(self) -> None:
        self.playback.stop()
        self.playing = False
        self.b_play.label = "▶ Play"

    def _warn(self, text: str) -> None:
        self.message = text
        self.alert.object = text
        self.alert.visible = True
