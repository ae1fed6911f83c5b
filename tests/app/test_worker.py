"""The server-wide scheduler and a screen's worker, with a stand-in session: the event
loop is the test's own queue of posted callbacks, drained on this thread."""

import queue
import threading
import time

import panel as pn
import pytest

from gmmot import worker as wk


class _Doc:
    """What a worker needs of a session's document: a session and next-tick callbacks."""

    session_context = object()

    def __init__(self, loop: queue.Queue):
        self.loop = loop

    def add_next_tick_callback(self, cb):
        self.loop.put(cb)


@pytest.fixture
def loop():
    """A one-thread scheduler (each lane) in Panel's cache, and the loop's queue."""
    pn.state.cache[wk._CACHE_KEY] = wk.Scheduler({"frame": 1, "prepare": 1})
    yield queue.Queue()
    pn.state.cache.pop(wk._CACHE_KEY)


def _worker(loop) -> wk.Worker:
    w = wk.Worker(pn.pane.Alert(visible=False))
    w.doc = _Doc(loop)
    return w


def _drain(loop, until, timeout=10.0) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "the jobs did not end"
        try:
            loop.get(timeout=0.05)()
        except queue.Empty:
            pass


def test_workers_take_turns_and_each_runs_in_order(loop):
    """Three sessions with 5 frames each queued at once on one thread: the frames
    interleave (round-robin), so no session waits behind another's queue."""
    ran, done = [], []
    workers = [_worker(loop) for _ in range(3)]
    for j in range(5):
        for i, w in enumerate(workers):
            w.submit("f", lambda i=i, j=j: ran.append((i, j)), done.append, print, lane="frame")
    _drain(loop, lambda: len(done) == 15)
    assert [i for i, _ in ran] == [0, 1, 2] * 5
    for i in range(3):
        assert [j for k, j in ran if k == i] == list(range(5))
    assert not any(w.busy for w in workers)


def test_a_newer_value_supersedes_one_waiting_and_cancel_drops_frames(loop):
    gate, started, ran, done = threading.Event(), threading.Event(), [], []
    w = _worker(loop)

    def slow():
        started.set()
        gate.wait(10)
        return "slow"

    w.submit("compile", slow, done.append, print)
    started.wait(10)
    for k in (2, 3, 4):  # a slider dragged while the compile runs: only the last applies
        w.submit("k", lambda k=k: ran.append(k) or k, done.append, print, key="k")
    w.submit("frame", lambda: ran.append("frame"), done.append, print, lane="frame")
    w.submit("eps", lambda: ran.append("eps") or "eps", done.append, print, "frame", "knobs")
    assert w.cancel_frames() == 1  # Pause: the frame that has not started is dropped
    gate.set()
    _drain(loop, lambda: not w.busy)
    assert ran == [4, "eps"] and done == ["slow", 4, "eps"]  # the knob value still applies


def test_one_session_compiling_does_not_hold_up_another_sessions_frames(loop):
    gate, frames = threading.Event(), []
    compiling, playing = _worker(loop), _worker(loop)
    compiling.submit("compile", lambda: gate.wait(10), print, print)
    for _ in range(5):
        playing.submit("f", lambda: None, frames.append, print, lane="frame")
    _drain(loop, lambda: len(frames) == 5)
    assert compiling.busy  # still compiling when the other's five frames were drawn
    gate.set()
    _drain(loop, lambda: not compiling.busy)


def test_a_failure_reaches_the_loop_and_a_long_job_shows_a_notice(loop):
    w, failed, gate = _worker(loop), [], threading.Event()

    def boom():
        gate.wait(10)
        raise ValueError("bad")

    w.submit("preparing N = 2000", boom, print, failed.append, stale=True)
    _drain(loop, lambda: w.notice.visible, timeout=5)  # shown after NOTICE_AFTER_S
    assert "preparing N = 2000" in w.notice.object and "before this change" in w.notice.object
    gate.set()
    _drain(loop, lambda: failed)
    assert str(failed[0]) == "bad" and not w.notice.visible


def test_without_a_session_a_job_runs_at_once():
    w, out = wk.Worker(pn.pane.Alert()), []
    w.submit("x", lambda: 7, out.append, print)
    assert out == [7] and not w.busy


def test_a_compile_left_behind_a_cancelled_frame_runs_in_the_prepare_lane(loop):
    gate, started, where = threading.Event(), threading.Event(), []
    other, w = _worker(loop), _worker(loop)
    other.submit("f", lambda: (started.set(), gate.wait(10)), print, print, lane="frame")
    started.wait(10)  # the only frame thread is busy: w waits in the frame lane
    w.submit("frame", lambda: where.append("frame"), print, print, lane="frame")
    w.submit("compile", lambda: where.append(threading.current_thread().name), print, print)
    assert w.cancel_frames() == 1
    gate.set()
    _drain(loop, lambda: not w.busy and not other.busy)
    assert where == ["gmmot-prepare-0"]


def test_a_closed_sessions_jobs_free_the_thread_for_others(loop):
    """A tab closes while its compile runs and another waits: the waiting one never runs,
    the running one's result is dropped, and the next session's job gets the thread."""
    gate, started, ran, drawn = threading.Event(), threading.Event(), [], []
    gone, other = _worker(loop), _worker(loop)
    gone.submit("compile", lambda: (started.set(), gate.wait(10)), drawn.append, print)
    started.wait(10)
    gone.submit("compile 2", lambda: ran.append("gone 2"), drawn.append, print)
    other.submit("compile", lambda: ran.append("other") or "other", drawn.append, print)
    gone.close()
    gate.set()
    _drain(loop, lambda: not other.busy and not gone.busy)
    assert ran == ["other"] and drawn == ["other"]


def test_new_work_clears_an_old_success_message_but_not_a_warning():
    """ "cloud 1: 20000 points ..." stayed on screen through later, unrelated work. Work
    submitted after a success (not a frame) clears it; a warning stays until dealt with."""
    from gmmot.screen import Screen

    screen = Screen()
    screen._inform("cloud 1: 20000 points")
    screen.worker.submit("a frame", lambda: 1, lambda _r: None, lambda _e: None, lane="frame")
    assert screen.alert.visible  # frames are not new work
    screen.worker.submit("K = 4", lambda: 1, lambda _r: None, lambda _e: None)
    assert not screen.alert.visible
    screen._warn("that file was refused")
    screen.worker.submit("K = 5", lambda: 1, lambda _r: None, lambda _e: None)
    assert screen.alert.visible and screen.alert.alert_type == "warning"
