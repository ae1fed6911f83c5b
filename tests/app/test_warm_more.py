"""The background warm-up (gmmot.warm_more): it compiles what it lists, stops when its
server is gone, and is not started where it would serve nobody."""

from __future__ import annotations

import os

import pytest

from gmmot import warm_more


def test_compiles_each_case_and_reports_them():
    assert warm_more.warm_more(None, ks=(2,), diracs=((64, 64),), w2_ks=(), last_diracs=()) == 2


@pytest.mark.slow  # its own programs (25-60 s cold): CI, not the quick lane
def test_warms_the_w2_fit_a_first_visit_prepares():
    """The W2 tab's first fit (its widgets' defaults) is compiled in the background; its
    program serves every K (the runs pad to K_MAX). The run tests compile the same
    program (the same cloud, bucket, sizes and raster): this reads it from the cache."""
    from gmmot.screens.w2_fit import W2FitScreen
    from gmmot_runs.w2_fit import DEFAULTS

    screen = W2FitScreen()
    shown = {
        "preset": screen.w_cloud.value,
        "n": screen.w_n.value,
        "k": screen.w_k.value,
        "res": screen.w_res.value,
        "seed": screen.w_seed.value,
    }
    assert shown == DEFAULTS
    assert warm_more.warm_more(None, ks=(), diracs=(), w2_ks=(DEFAULTS["k"],), last_diracs=()) == 1


def test_stops_once_its_server_is_gone():
    # a server pid that is not this process's parent: the server has exited
    assert warm_more.warm_more(os.getppid() + 1_000_000, ks=(2,), diracs=((64, 64),)) == 0


def test_not_started_when_switched_off_or_without_a_cache(monkeypatch):
    monkeypatch.setenv("GMMOT_WARM_MORE", "0")
    assert warm_more.start() is None
    monkeypatch.setenv("GMMOT_WARM_MORE", "1")
    monkeypatch.setattr(warm_more, "CACHE_DIR", "off")
    assert warm_more.start() is None


def test_covers_every_dirac_bucket_and_k():
    from gmmot_core.buckets import bucket, buckets_up_to, image_grid

    # every (grid, bucket) a screen reaches: presets of 64^2 and 128^2, uploads up to
    # 512 pixels a side; (64, 200) is compiled at start
    reached = {(s, b) for s in (64, 128, 256, 512) for b in buckets_up_to(5000)}
    warmed = {
        (image_grid((side, side))[0], bucket(n))
        for side, n in warm_more.MORE_DIRACS + warm_more.LAST_DIRACS + ((64, 200),)
    }
    assert warmed == reached
    assert set(warm_more.MORE_K) | {3} == set(range(2, 9))  # K = 3 is compiled at start
    assert set(warm_more.W2_KS) == set(range(1, 9))


def test_the_child_is_reaped_when_it_ends(monkeypatch):
    """The child stayed a zombie from its end until the server exited: nobody waited for
    it. Now a thread of the server waits for it (its return code is then known without
    anyone polling)."""
    import subprocess
    import sys
    import time

    real = subprocess.Popen
    monkeypatch.setattr(
        warm_more.subprocess, "Popen", lambda cmd, cwd: real([sys.executable, "-c", "pass"])
    )
    monkeypatch.setenv("GMMOT_WARM_MORE", "1")
    monkeypatch.setattr(warm_more, "CACHE_DIR", "/nonexistent-cache")
    child = warm_more.start()
    deadline = time.monotonic() + 30
    while child.returncode is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child.returncode == 0
