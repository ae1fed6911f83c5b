"""One headless session of the app over the Bokeh websocket protocol (for the load test).

It does what a browser tab does, minus the paint: pulls the page's document, sends
``document_ready`` (which starts the demo playing), echoes every frame number back the
moment it arrives (the coupled-EM screen's flow control waits for that echo), and records
each frame's arrival time. Protocol, read as lines on stdout / stdin:

- prints ``playing`` once 3 frames arrived;
- reads one line from stdin: the wall-clock time (``time.time()``) at which to stop;
- then clicks Pause (a ``ButtonClick`` on the play button), waits for the button to read
  Play again, closes, and prints one JSON line:
  ``{"frames": [arrival times, s], "pause_click_s": ...}``.

With ``compile N`` after the URL the client, once playing, types N into "points per
cloud" (a cloud size the server has not run: a new program to compile), clicks Pause
0.5 s later and prints ``{"pause_during_compile_s": ...}`` when the button reads Play;
then it waits for the stop time as above.

Usage: ``python benchmarks/ws_client.py URL [compile N]``.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import threading
import time
from pathlib import Path

import panel.models
from bokeh.client import pull_session
from bokeh.client.connection import ClientConnection
from bokeh.client.states import DISCONNECTED, ErrorReason
from bokeh.events import ButtonClick, DocumentReady

# Panel's Bokeh model types must be registered for the page to decode; some load lazily
for _mod in pkgutil.iter_modules(panel.models.__path__):
    importlib.import_module(f"panel.models.{_mod.name}")
# and the app's own components (their data models are defined when the module is imported)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
importlib.import_module("gmmot.widgets")


async def _handle_messages(self: ClientConnection) -> None:
    """Bokeh's client awaits itself once per message, so a session that receives more than
    ~300 frames dies of RecursionError; this does the same work in a loop."""
    while True:
        message = await self._pop_message()
        if message is None:
            reason = DISCONNECTED(ErrorReason.NETWORK_ERROR, None, "socket closed")
            await self._transition_to_disconnected(reason)
            return
        if message.msgtype == "PATCH-DOC":
            self._session._handle_patch(message)
        if self._until_predicate is not None and self._until_predicate():
            self._until_predicate = None
            self._loop.stop()
            return


ClientConnection._handle_messages = _handle_messages


def _models(doc):
    """(frame counter the server bumps, echo the client writes) of the coupled-EM screen."""
    hidden = [m for m in doc.models if type(m).__name__ == "Spinner" and not m.visible]
    sent = [m for m in hidden if m.js_property_callbacks]
    drawn = [m for m in hidden if not m.js_property_callbacks]
    if len(sent) != 1 or len(drawn) != 1:
        raise RuntimeError(f"page layout not recognised: {len(sent)}, {len(drawn)}")
    return sent[0], drawn[0]


def _pause_button(doc):
    """The one button that reads Pause (the playing screen's), or None if none plays."""
    buttons = [m for m in doc.models if type(m).__name__ == "Button" and "Pause" in m.label]
    return buttons[0] if len(buttons) == 1 else None


def _points_field(doc):
    fields = [m for m in doc.models if "Points per cloud" in str(getattr(m, "title", ""))]
    if len(fields) != 1:
        raise RuntimeError(f"points-per-cloud field not found ({len(fields)})")
    return fields[0]


def main(url: str, compile_n: int | None = None) -> None:
    session = pull_session(url=url)
    loop = session._connection._loop  # the client's tornado IOLoop (run by loop_until_closed)
    doc = session.document
    sent, drawn = _models(doc)
    frames: list[float] = []
    result: dict = {}

    def on_frame(_attr, _old, new) -> None:
        frames.append(time.time())
        drawn.value = new  # the echo: what the browser sends after painting
        if len(frames) == 3:
            print("playing", flush=True)
            if compile_n is not None:
                loop.add_callback(start_compile)

    def on_label(_attr, _old, new) -> None:
        if "Play" in str(new) and "clicked" in result:
            result["pause_click_s"] = time.time() - result.pop("clicked")
            loop.add_callback(session.close)
        elif "Play" in str(new) and "compile_clicked" in result:
            took = time.time() - result.pop("compile_clicked")
            print(json.dumps({"pause_during_compile_s": took}), flush=True)

    def on_notice(_attr, old, new) -> None:  # the compile's notice shown, then hidden
        if new and not old:
            result["notice_at"] = time.time()
        elif old and not new and "notice_at" in result:
            end = time.time()
            print(json.dumps({"compile_from": result["changed"], "compile_to": end}), flush=True)

    def start_compile() -> None:
        for m in doc.models:
            if "alert-info" in (getattr(m, "css_classes", None) or []):
                m.on_change("visible", on_notice)
        result["changed"] = time.time()
        _points_field(doc).value = compile_n
        loop.call_later(0.5, pause_in_compile)

    def pause_in_compile() -> None:
        button = _pause_button(doc)
        button.on_change("label", on_label)
        result["compile_clicked"] = time.time()
        doc.callbacks.send_event(ButtonClick(button))

    def pause() -> None:
        button = _pause_button(doc)
        if button is None:  # never played (or paused already): nothing to pause
            session.close()
            return
        if "compile_clicked" not in result:
            button.on_change("label", on_label)
        result["clicked"] = time.time()
        doc.callbacks.send_event(ButtonClick(button))

    def wait_for_stop() -> None:
        until = float(sys.stdin.readline())
        time.sleep(max(0.0, until - time.time()))
        loop.add_callback(pause)
        time.sleep(300)  # a pause that never answers: give up
        loop.add_callback(session.close)

    sent.on_change("value", on_frame)
    doc.callbacks.send_event(DocumentReady())
    threading.Thread(target=wait_for_stop, daemon=True).start()
    session._connection.loop_until_closed()  # bokeh keeps this loop for tests and tools
    print(json.dumps({"frames": frames, "pause_click_s": result.get("pause_click_s")}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "compile" else None)
