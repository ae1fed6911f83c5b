"""The skeleton every screen shares: the alert box, play / step / reset with one flow
control, frames and rebuilds in the worker, export buttons, the main column.

A screen subclasses :class:`Screen`, builds its widgets and plots, and reports through
``_warn`` (something went wrong: the last good state is kept), ``_inform`` (an upload or
a change took effect) and ``_clear``. One alert per screen, so a warning after a success
is never shown in the success colour.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
from collections.abc import Callable

import panel as pn
import param

from gmmot.playback import FrameFlow, Playback, session_connected
from gmmot.widgets import download_buttons
from gmmot.worker import SHOW_NOTICE_JS, Notice, Worker

__all__ = ["Screen"]


# shows in the browser, at once, that the change of ``cb_obj`` is being applied: the
# server's own notice comes a round trip (and Panel's 50 ms debounce) later, 0.7-1 s on a
# busy 2-core server, and replaces this text
_ANNOUNCE_JS = (
    SHOW_NOTICE_JS
    + """
// a value the server sent (a refused one put back) is no change of the user's: Bokeh
// applies the server's patches with the document's models frozen
if (cb_obj.document == null || cb_obj.document._hold_models_freeze) return;
// the screen's notice, found by its mark: it may sit in another root of the page (the
// main area; the widget is in the sidebar, each made on its tab's first opening)
let notice;
for (const m of cb_obj.document.all_models)
  if (m.css_classes !== undefined && m.css_classes.includes(mark)) notice = m;
if (notice === undefined) return;
const what = cb_obj.title || cb_obj.label || "the change";
show_notice(notice, `applying ${what}: starting (the view below is from before this change)`);
"""
)
_NOTICE_MARKS = itertools.count()  # each screen's notice carries a mark of its own


#: When a change started no work, how long until the notice is checked again (ms): the
#: browser's notice of the change arrives within a round trip and a busy turn.
SETTLE_MS = 1000


class Screen(pn.viewable.Viewer):
    """Base of the app's screens: ``playing`` and ``message`` params, the ``alert`` and
    ``notice`` panes, the ``worker``; with :meth:`make_playback` and :meth:`make_controls`,
    play / pause / step / reset of ``run`` (a :class:`gmmot_runs.run.Run`) frame by frame."""

    playing = param.Boolean(default=False, doc="Whether frames are being produced.")
    message = param.String(default="", doc="Last error or warning shown to the user.")
    # the screen's actions, as its buttons (and tests, notebooks) trigger them
    play = param.Event(doc="Play, or pause if playing (the Play / Pause button).")
    step = param.Event(doc="One frame now, after the work in flight (the Step button).")
    reset = param.Event(doc="Back to the run's start (the Reset button).")

    #: the run the screen shows (a :class:`gmmot_runs.run.Run`), once there is one
    run = None

    #: the tab's title, what to try first there, the details (Markdown)
    title, try_first, about = "", "", ""
    #: the run kind, its knob model and its settings model (URL parameters ``kind.name``),
    #: if the screen has them; ``knobs`` and ``settings`` are their widgets by name
    kind, Knobs, Settings = "", None, None

    def __init__(self, **params):
        super().__init__(**params)
        self.alert = pn.pane.Alert("", alert_type="warning", visible=False)
        self.notice_mark = f"gmmot-screen-notice-{next(_NOTICE_MARKS)}"
        self.notice = Notice("", alert_type="info", visible=False, css_classes=[self.notice_mark])
        self.worker = Worker(self.notice, on_work=self._clear_success)
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            self.worker.doc = doc  # jobs submitted outside a session callback find it
            pn.state.on_session_destroyed(lambda _ctx: self.worker.close())

    @property
    def busy(self) -> bool:
        """Work for this screen is running or waiting off the event loop."""
        return self.worker.busy

    def offloop(self, what: str, fn: Callable[[], object]) -> Callable:
        """``fn`` as an async download callback whose work runs in the worker (an export
        made with matplotlib takes seconds: the page keeps answering, the notice tells)."""

        async def callback():
            if self.worker.doc is None:
                return fn()
            future = asyncio.get_running_loop().create_future()

            def settle(setter, value) -> None:
                if not future.done():
                    setter(value)

            self.worker.submit(
                what,
                fn,
                lambda r: settle(future.set_result, r),
                lambda e: settle(future.set_exception, e),
            )
            return await future

        return callback

    def announce(self, widgets: list) -> None:
        """The notice says at once, from the browser, that the user's change of one of
        ``widgets`` is being applied (a slider on release, a button on click, any other
        widget on its value); a change that started no work hides it again on the server.
        """
        for w in widgets:
            if isinstance(w, pn.widgets.Button):
                w.js_on_click(args={"mark": self.notice_mark}, code=_ANNOUNCE_JS)
                w.on_click(lambda _e: self._settle_notice())
                continue
            prop = "value_throttled" if "value_throttled" in w.param else "value"
            if prop == "value_throttled":
                # Panel maps no model property to value_throttled, so jscallback cannot
                # name it; the Bokeh slider's own (set by the browser only) is named here
                w._rename = {**w._rename, "value_throttled": "value_throttled"}
            w.jscallback(args={"mark": self.notice_mark}, **{prop: _ANNOUNCE_JS})
            w.param.watch(lambda _e: self._settle_notice(), prop, precedence=1)

    def _settle_notice(self) -> None:
        """A change was applied or refused: if nothing runs, a notice the browser showed
        for it is over. Checked now and SETTLE_MS later (the browser's notice may reach
        the server after the change it announced)."""
        self._hide_notice_if_idle()
        doc = self.worker.doc
        if doc is not None and doc.session_context is not None:
            doc.add_timeout_callback(self._hide_notice_if_idle, SETTLE_MS)

    def _hide_notice_if_idle(self) -> None:
        if not self.worker.busy:
            self.notice.visible = False

    def exported_run(self):
        """The run the exports describe (a :class:`gmmot_runs.run.Run`)."""
        return self.run

    def shown_view(self) -> dict | None:
        """The view the screen shows, when it is not the run's latest (None: the latest)."""
        return None

    #: the exported files' names start with it (None: the screen exports no run)
    files_stem: str | None = None

    def run_files(self, figure: str | None = None) -> list[tuple]:
        """``(callback, filename, label)`` of the run's parameter file, results and figure
        (PNG, SVG, named ``figure`` or :attr:`files_stem`), made through the run protocol
        from :meth:`exported_run` and the view on screen (:meth:`shown_view`)."""
        stem = self.files_stem

        def params() -> io.BytesIO:
            return io.BytesIO(self.exported_run().spec().to_json().encode())

        def results() -> io.BytesIO:
            return io.BytesIO(json.dumps(self.exported_run().results()).encode())

        def drawn(fmt: str) -> Callable[[], io.BytesIO]:
            return lambda: io.BytesIO(self.exported_run().figure(fmt, self.shown_view()))

        figure = figure or stem
        return [
            (params, f"{stem}-params.json", "parameters (JSON)"),
            (results, f"{stem}-results.json", "results (JSON)"),
            (drawn("png"), f"{figure}.png", "figure (PNG)"),
            (drawn("svg"), f"{figure}.svg", "figure (SVG)"),
        ]

    def export_section(self) -> list:
        """The sidebar's export section: ``downloads`` and how to replay the parameters."""
        params = f"{self.files_stem}-params.json"
        replay = f"Replay headless: `gmmot replay {params} --out r.json`"
        replay = [pn.pane.Markdown(replay)] if self.files_stem else []
        return [pn.pane.Markdown("### Export"), *self.downloads, *replay]

    def figure_row(self, fig, *side) -> pn.Row:
        """The main figure at its own size (square plots keep their shape) and ``side``
        (figures or panes) stacked in the width left."""
        return pn.Row(
            pn.pane.Bokeh(fig),
            pn.Column(
                *(pn.pane.Bokeh(f, sizing_mode="stretch_width", min_width=280)
                  if not isinstance(f, pn.viewable.Viewable) else f for f in side),
                sizing_mode="stretch_width",
                min_width=280,
            ),
            sizing_mode="stretch_width",
        )  # fmt: skip

    def downloads_for(self, items: list[tuple[Callable, str, str]]) -> list:
        """:func:`download_buttons` whose files are made off the event loop."""
        return download_buttons(
            [(self.offloop(f"making {name}", cb), name, label) for cb, name, label in items]
        )

    def make_controls(self, step: bool = True, reset: bool = True, disabled: bool = False):
        """``controls``, a row of ``b_play`` (the ``play`` event) and, if asked,
        ``b_step`` (``step``) and ``b_reset`` (``reset``)."""
        self.b_play = pn.widgets.Button(label="▶ Play", color="primary", disabled=disabled)
        buttons = [self.b_play]
        if step:
            self.b_step = pn.widgets.Button(label="Step", disabled=disabled)
            buttons.append(self.b_step)
        if reset:
            self.b_reset = pn.widgets.Button(label="Reset", disabled=disabled)
            buttons.append(self.b_reset)
        for b, event in zip(buttons, ("play", "step", "reset"), strict=False):
            b.on_click(lambda _e, event=event: self.param.trigger(event))
        self.controls = pn.Row(*buttons)

    def make_playback(self, period_ms: int) -> None:
        """``playback``, the clock that asks for a frame every ``period_ms`` while playing,
        and ``flow``: a frame starts only once the browser painted the one before the
        last (:class:`~gmmot.playback.FrameFlow`, ahead 1: it paints while the server
        steps), so a slow browser never queues frames and a click never waits behind
        them (a Pause took 6.4 s without it). Its widgets are in :meth:`main_column`."""
        self.flow = FrameFlow(self._on_drawn, ahead=1)
        self.playback = Playback(self._on_period, period_ms)

    def _on_period(self) -> None:
        if not session_connected():
            self._pause()  # the tab is gone: no frames for it before the session is reaped
        elif self.flow.ready():
            self._tick()

    def _on_drawn(self) -> None:
        """The browser painted a frame: the next one now if its time has come."""
        if self.playing and self.flow.due(self.playback.period):
            self._tick()

    def step_job(self, run) -> Callable[[], object]:
        """What a frame runs in the worker: the knobs' values (read now, on the loop) set
        on ``run``, then one ``run.step()``, whose view it returns."""
        knobs = self.knob_values()

        def step():
            run.set(**knobs)
            return run.step()

        return step

    def submit_frame(self, what: str, work: Callable[[], object], show: Callable, failed: str):
        """A frame of ``run``: ``work()`` in the worker's frame lane, then ``show(result)``
        on the loop and the browser asked to echo it; a stopped run pauses. A result of a
        run replaced meanwhile is dropped. On an exception: paused, and ``failed`` (a
        format string of ``exc``) is the warning."""
        run = self.run

        def shown(result) -> None:
            if run is not self.run:
                return  # a newer run replaced this one meanwhile
            show(result)
            self.flow.mark_sent()
            if run.stopped:
                self._pause()

        self.worker.submit(
            what, work, shown, lambda exc: self._failed(failed.format(exc=exc)), lane="frame"
        )

    def submit_run(
        self, what: str, build: Callable[[], object], use: Callable, refused: str,
        kept: str = "The previous run is kept.", upload=None, pause: bool = True,
    ):  # fmt: skip
        """A new run (or whatever ``build()`` returns with it) made in the worker, a new
        shape compiling there; ``use(built)`` on the loop. On failure the previous run is
        kept, the warning is ``"{refused}: {exc}. {kept}"`` and the ``upload`` box that
        brought the data (if any) is cleared for the next file. ``pause``: the screen
        pauses meanwhile (coupled EM, a live view, plays on). A newer rebuild supersedes
        one still waiting."""

        def failed(exc: Exception) -> None:
            text = f"{refused}: {exc}. {kept}"
            if pause:
                self._failed(text)  # paused and warned; a screen's own may also redraw
            else:
                self._warn(text)
            if upload is not None:
                upload.clear()

        if pause:
            self._pause()
        self.worker.submit(what, build, use, failed, key="run", stale=True)

    def _failed(self, text: str) -> None:
        """A frame or a rebuild failed: paused, the last good state kept and shown, and
        the warning."""
        self._pause()
        self._warn(text)

    def main_column(self, *objects) -> pn.Column:
        """The screen's main area: the notice and the alert, then ``objects``, and the
        flow control's hidden widgets."""
        return pn.Column(
            self.notice, self.alert, *objects, *self.flow.widgets, sizing_mode="stretch_width"
        )

    def watch_upload(self, upload, what: str, kept: str, on_file: Callable) -> None:
        """``on_file(raw, name)`` for each file the ``upload`` box receives (the screen's
        public ``upload``). A file the box refused before reading it (size, type) is a
        warning, "``what`` rejected: why. ``kept``", and the box is cleared."""

        def received(event) -> None:
            if event.new is not None:  # None: cleared; an empty file (b"") gets its message
                on_file(event.new, upload.filename or "")

        def refused(event) -> None:
            if event.new:
                self._warn(f"{what} rejected: {event.new}. {kept}")
                upload.clear()

        upload.param.watch(received, "value")
        upload.param.watch(refused, "refused")

    def read_upload(self, upload, what: str, kept: str, name: str, read: Callable, use: Callable):
        """``read()`` of a received file in the worker, ``use(result)`` on the loop; on
        failure the warning "``what`` rejected: exc. ``kept``", and the ``upload`` box is
        cleared for the next file."""

        def rejected(exc: Exception) -> None:
            self._warn(f"{what} rejected: {exc}. {kept}")
            upload.clear()

        self.worker.submit(f"reading {name or 'the upload'}", read, use, rejected, key="upload")

    def knob_values(self) -> dict:
        """The values of the knob widgets (``knobs``: :func:`gmmot.knobs.knob_widgets`)."""
        return {name: w.value for name, w in self.knobs.items()}

    @param.depends("step", watch=True)
    def _step(self) -> None:
        """One frame now, queued after the work in flight (a click is never dropped)."""
        self._tick(clicked=True)

    #: what the notice says while Reset runs; whether Reset pauses (coupled EM, a live
    #: view that opens playing, plays on from its start)
    reset_label, reset_pauses = "back to the start", True

    @param.depends("reset", watch=True)
    def _reset(self) -> None:
        """Back to the run's start: paused (see ``reset_pauses``), then ``run.reset()``
        in the worker after the frame in flight (:meth:`_reset_job`), and its view shown
        (:meth:`_show_reset`)."""
        run = self.run
        if run is None:
            return
        if self.reset_pauses:
            self._pause()
        else:
            self.worker.cancel_frames()  # frames not started yet would step the old state
        self._clear()
        self.worker.submit(
            self.reset_label,
            self._reset_job(run),
            lambda view: self._show_reset(view) if run is self.run else None,
            lambda exc: self._failed(f"Reset failed: {exc}."),
            key="reset",
        )

    def _reset_job(self, run) -> Callable[[], object]:
        """What the worker runs to reset ``run`` (knob values read now, on the loop); it
        returns what :meth:`_show_reset` draws."""
        return run.reset

    def _show_reset(self, view) -> None:
        raise NotImplementedError(f"{type(self).__name__} draws no reset")

    @param.depends("play", watch=True)
    def _toggle(self) -> None:
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
        self.worker.cancel_frames()  # a frame not started yet is dropped; knob values stay
        self.playing = False
        self.b_play.label = "▶ Play"

    def opened(self) -> None:
        """The screen's tab was opened: take again what it reads from the other screens."""

    def hide(self) -> bool:
        """Stop producing frames because the screen is no longer shown (nothing redrawn:
        nobody sees it); whether it was playing."""
        if not self.playing:
            return False
        Screen._pause(self)
        return True

    def _warn(self, text: str) -> None:
        """Show a warning (and keep it as ``message``)."""
        self.message = text
        self._show(text, "warning")

    def warn_after_work(self, text: str) -> None:
        """A warning shown now and again once the work queued so far has run (a run built
        meanwhile clears the alert: what the page URL refused must stay said)."""
        self._warn(text)
        if self.worker.busy:
            self.worker.submit(
                "noting what was refused",
                lambda: None,
                lambda _r: self._warn(text),
                lambda _e: None,
            )

    def _inform(self, text: str) -> None:
        """Show that something took effect (an upload, a new target)."""
        self._show(text, "success")

    def _clear(self) -> None:
        self.alert.visible = False

    def _clear_success(self) -> None:
        """New work began: a success message is about earlier work (a warning stays)."""
        if self.alert.visible and self.alert.alert_type == "success":
            self._clear()

    def _show(self, text: str, kind: str) -> None:
        self.alert.alert_type = kind
        self.alert.object = text
        self.alert.visible = True
        self._settle_notice()
