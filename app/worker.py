"""Work off the server's event loop: one :class:`Worker` per screen, one shared
:class:`Scheduler` per server process.

A screen submits jobs (a frame, a new run that may compile, an upload to parse, an
export) to its worker. A worker runs its jobs one at a time and in order; the scheduler
runs the jobs of every worker of every session on a few threads (JAX releases the GIL
while XLA compiles and runs), taking the workers in turn (round-robin), so no session
waits behind another's queue. There are two lanes: ``frame`` for the short steps of an
animation and ``prepare`` for work that may compile or take seconds, so one session's
compile never holds up another session's frames.

A job's result is applied on its session's event loop through Bokeh's thread-safe
``add_next_tick_callback``, holding the document lock only for the draw. A job with a
``key`` supersedes a pending job of the same key that has not started (a newer slider
value); :meth:`Worker.cancel` drops pending jobs (Pause, Reset). Any job that has waited
or run for :data:`NOTICE_AFTER_S` shows what it does and for how long in the screen's
notice, until it ends. Without a session (tests, scripts) a job runs at once.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import panel as pn
from panel.io.state import set_curdoc

__all__ = [
    "LANES",
    "NOTICE_AFTER_S",
    "SHOW_NOTICE_JS",
    "Notice",
    "Scheduler",
    "Worker",
    "scheduler",
]

NOTICE_AFTER_S = 0.2
#: How often the notices are looked at: a long job's notice shows within
#: NOTICE_AFTER_S + TELL_EVERY_S = 0.25 s of its submission (plus the round trip).
TELL_EVERY_S = 0.05
#: Threads per lane: frames use every core; compiles (single-threaded in XLA) two at most.
LANES = {
    "frame": int(os.environ.get("GMMOT_FRAME_THREADS", max(1, min(4, os.cpu_count() or 1)))),
    "prepare": int(os.environ.get("GMMOT_PREPARE_THREADS", 2)),
}
_CACHE_KEY = "gmmot-scheduler"


@dataclass
class Job:
    what: str
    fn: Callable[[], object]
    done: Callable[[object], None]
    failed: Callable[[Exception], None]
    lane: str
    key: str | None
    stale: bool = False  # until it ends, the view shows the state before it
    submitted: float = field(default_factory=time.monotonic)


class Scheduler:
    """Runs workers' jobs on ``lanes`` (name -> thread count), one worker at a time per
    worker, workers taken in the order they became ready (each worker has at most one
    job queued here at a time, so that order is round-robin)."""

    def __init__(self, lanes: dict[str, int] | None = None):
        self.lanes = dict(LANES if lanes is None else lanes)
        self._cond = threading.Condition()
        self._ready: dict[str, deque] = {lane: deque() for lane in self.lanes}
        self._active: set[Worker] = set()  # workers with a job running or queued
        for lane, count in self.lanes.items():
            for i in range(count):
                threading.Thread(
                    target=self._serve, args=(lane,), daemon=True, name=f"gmmot-{lane}-{i}"
                ).start()
        threading.Thread(target=self._tell, daemon=True, name="gmmot-notices").start()

    def offer(self, worker: Worker) -> None:
        """Queue ``worker`` for its next job if it is idle and has one."""
        with self._cond:
            if worker._running is not None or worker._queued or not worker._pending:
                return
            worker._queued = True
            self._active.add(worker)
            self._ready[worker._pending[0].lane].append(worker)
            self._cond.notify_all()

    def _serve(self, lane: str) -> None:
        ready = self._ready[lane]
        while True:
            with self._cond:
                while not ready:
                    self._cond.wait()
                worker = ready.popleft()
                worker._queued = False
                if not worker._pending:  # cancelled meanwhile
                    self._active.discard(worker)
                    continue
                if worker._pending[0].lane != lane:  # its frame was cancelled: a compile
                    worker._queued = True  # waits in its own lane, not on a frame thread
                    self._ready[worker._pending[0].lane].append(worker)
                    self._cond.notify_all()
                    continue
                job = worker._pending.popleft()
                worker._running = job
            try:
                result = job.fn()
            except Exception as exc:  # reported on the loop, never lost in the thread
                then = partial(job.failed, exc)
            else:
                then = partial(job.done, result)
            if not _post(worker.doc, partial(worker._finish, job, then)):
                self.release(worker)  # the session is gone: nothing to show, free the worker

    def release(self, worker: Worker) -> None:
        with self._cond:
            worker._running = None
            if not worker._pending:
                self._active.discard(worker)
        self.offer(worker)

    def _tell(self) -> None:
        """Every TELL_EVERY_S: each worker whose current job has taken over NOTICE_AFTER_S
        shows what it does and for how long (posted only when the text changes)."""
        shown: dict[int, str] = {}  # id(worker) -> the text last posted
        while True:
            time.sleep(TELL_EVERY_S)
            now = time.monotonic()
            with self._cond:
                long = []
                for w in self._active:
                    job = w._running or (w._pending[0] if w._pending else None)
                    if job is not None and now - job.submitted >= NOTICE_AFTER_S:
                        long.append((w, job, now - job.submitted, w._running is None))
            texts = {}
            for w, job, elapsed, waiting in long:
                text = _notice(job, "waiting for a free thread" if waiting else "working", elapsed)
                texts[id(w)] = text
                if shown.get(id(w)) != text:
                    _post(w.doc, partial(w._show, job, text))
            shown = texts


def scheduler() -> Scheduler:
    """This server process's scheduler (kept in Panel's process-wide cache)."""
    sched = pn.state.cache.get(_CACHE_KEY)
    if sched is None:
        sched = pn.state.cache.setdefault(_CACHE_KEY, Scheduler())
    return sched


class Worker:
    """A screen's jobs, run in order off the event loop; ``notice`` (an Alert) tells of
    long ones; ``on_work()`` is called when a job other than a frame is submitted (the
    screen clears a success message that no longer concerns what runs). ``doc``: the
    session's document (set on the first submit from a session callback, or by the
    screen when it is built in one)."""

    def __init__(self, notice: pn.pane.Alert, on_work: Callable[[], None] | None = None):
        self.notice = notice
        self.on_work = on_work
        self.doc = None
        self._pending: deque[Job] = deque()
        self._running: Job | None = None
        self._queued = False

    @property
    def busy(self) -> bool:
        """A job is running or waiting."""
        return self._running is not None or bool(self._pending)

    def submit(
        self,
        what: str,
        fn: Callable[[], object],
        done: Callable[[object], None],
        failed: Callable[[Exception], None],
        lane: str = "prepare",
        key: str | None = None,
        stale: bool = False,
    ) -> None:
        """Run ``fn()`` after this worker's earlier jobs; ``done(result)`` or
        ``failed(exception)`` run on the event loop when it ends. A pending job with the
        same ``key`` is replaced (it never runs); ``stale``: the view is out of date until
        this job ends, and the notice says so."""
        if lane != "frame" and self.on_work is not None:
            self.on_work()
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:
            doc = self.doc  # an async callback (a download) runs without curdoc
        if doc is None or doc.session_context is None:
            try:
                result = fn()
            except Exception as exc:
                failed(exc)
            else:
                done(result)
            return
        self.doc = doc
        job = Job(what, fn, done, failed, lane, key, stale)
        sched = scheduler()
        with sched._cond:
            if key is not None:
                for i, old in enumerate(self._pending):
                    if old.key == key:
                        job.submitted = old.submitted  # the wait goes on from the first
                        self._pending[i] = job
                        break
                else:
                    self._pending.append(job)
            else:
                self._pending.append(job)
        if stale:  # the user just changed what is shown: say so now, not after a wait
            show_notice(self.notice, _notice(job, "starting", 0.0))
        sched.offer(self)

    def cancel(self, lane: str | None = None, key: str | None = None) -> int:
        """Drop the pending jobs (of ``lane``, or with ``key``; all by default); the running
        one ends as it will. Returns how many were dropped."""
        return self._drop(
            lambda j: (lane is None or j.lane == lane) and (key is None or j.key == key)
        )

    @staticmethod
    def _lock():
        """The scheduler's lock on every worker's queue (a fresh one without a scheduler)."""
        sched = pn.state.cache.get(_CACHE_KEY)
        return sched._cond if sched is not None else threading.Lock()

    def _drop(self, dropped: Callable[[Job], bool]) -> int:
        with self._lock():
            keep = [j for j in self._pending if not dropped(j)]
            count = len(self._pending) - len(keep)
            self._pending = deque(keep)
        if not self.busy:
            self._idle()
        return count

    def close(self) -> None:
        """The session is gone: drop its pending jobs (a closed tab's compile must not hold
        a thread others wait for) and forget its document (a running job's result is
        dropped). The notice is left alone: its document no longer draws."""
        with self._lock():
            self._pending.clear()
            self.doc = None

    def cancel_frames(self) -> int:
        """Drop the pending animation frames (Pause, Reset): frame-lane jobs without a
        key. Keyed ones (a knob value) still apply."""
        return self._drop(lambda j: j.lane == "frame" and j.key is None)

    def _show(self, job: Job, text: str) -> None:
        if job is self._running or (self._pending and job is self._pending[0]):
            show_notice(self.notice, text)

    def _finish(self, job: Job, then: Callable[[], None]) -> None:
        try:
            then()
        finally:
            scheduler().release(self)
            if not self.busy:
                self._idle()

    def _idle(self) -> None:
        self.notice.visible = False


#: JavaScript: ``show_notice(notice, text)`` shows ``text`` in a Notice's model from the
#: browser (the pane's text is escaped HTML of a paragraph)
SHOW_NOTICE_JS = """
function show_notice(notice, text) {
  const escape = (t) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  notice.text = escape("<p>" + escape(text) + "</p>");
  notice.visible = true;
}
"""


class Notice(pn.pane.Alert):
    """The info Alert a worker tells through. The browser may show it on its own (a file
    on its way, a change being applied: :mod:`gmmot.upload`, ``Screen.announce``), so its
    ``visible`` is synced both ways: the server knows what is shown and can hide it."""

    @property
    def _linked_properties(self) -> tuple[str, ...]:
        return (*super()._linked_properties, "visible")


def show_notice(notice: pn.pane.Alert, text: str) -> None:
    """Show ``text`` in ``notice``, sent even when it is the text the server sent last
    (the browser may have written its own since)."""
    if notice.object == text:
        notice.param.trigger("object")
    else:
        notice.object = text
    notice.visible = True


def _notice(job: Job, doing: str, elapsed: float) -> str:
    """What a notice says of ``job``: what it does, ``doing`` (waiting, working), and for
    how long once that is a second or more."""
    text = f"{job.what}: {doing}"
    if job.stale:
        text += " (the view below is from before this change)"
    return f"{text}, {elapsed:.0f} s" if elapsed >= 1.0 else text


def _post(doc, callback) -> bool:
    """Schedule ``callback`` on the document's event loop; False when the session has
    been released meanwhile (its document no longer takes callbacks: nothing to show)."""
    if doc is None:
        return False

    def in_session() -> None:
        with set_curdoc(doc):  # so pn.state.curdoc (periodic callbacks, Play) is this session
            callback()

    try:
        doc.add_next_tick_callback(in_session)
    except (AttributeError, RuntimeError, ValueError):
        return False
    return True
