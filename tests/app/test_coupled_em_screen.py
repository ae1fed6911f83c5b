"""The coupled-EM screen keeps what the user gave it: uploads survive preset settings."""

import numpy as np

from gmmot.screens.coupled_em import CoupledEMScreen


def _cloud_csv(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pts = np.concatenate([rng.normal(0, 1, (150, 2)), rng.normal(4, 1, (150, 2))])
    return ("x,y\n" + "\n".join(f"{x:.5f},{y:.5f}" for x, y in pts)).encode()


def test_preset_settings_never_replace_uploads_silently():
    """Typing a new 'points per cloud' with two uploads loaded used to swap both clouds for
    the demo pair without a word. Now the uploads stay (with a warning saying why), and
    only picking a preset replaces them, with a message."""
    screen = CoupledEMScreen()
    assert "cloud 0 from preset 'demo pair'" in screen.data_in_use.object
    for which in (0, 1):
        screen.upload(_cloud_csv(which), f"cloud{which}.csv", which=which)
    uploaded = (screen.run.points0, screen.run.points1)
    assert len(uploaded[0]) == 300 and "inline" in screen.run.data
    # the Data section says what is in use (it said "demo pair / 2000 points" after uploads)
    in_use = screen.data_in_use.object
    assert "cloud 0 from uploaded cloud0.csv (300 points)" in in_use, in_use
    assert "cloud 1 from uploaded cloud1.csv (300 points)" in in_use, in_use
    screen.data.n = 5000
    assert screen.run.points0 is uploaded[0] and screen.run.points1 is uploaded[1]
    assert screen.alert.alert_type == "warning" and "uploaded clouds are kept" in screen.message
    screen.param.trigger("step")  # the session still runs on the uploads
    assert screen.run.view["iteration"] >= 1
    screen.data.preset = "moons -> rings"
    assert len(screen.run.points0) == 5000 and "preset" in screen.run.data
    assert "uploaded" not in screen.data_in_use.object
    assert "preset 'moons -> rings'" in screen.data_in_use.object
    assert screen.alert.alert_type == "success" and "replaced the uploaded" in screen.alert.object


def test_k_applies_once_on_release_not_per_value_passed():
    """Dragging K 3 -> 6 passes 4 and 5; each would be a compile. Only the release acts."""
    import param

    screen = CoupledEMScreen()
    for k in (4, 5, 6):
        screen.w_k.value = k
    assert screen.run.structure.k == 3
    with param.edit_constant(screen.w_k):
        screen.w_k.value_throttled = 6
    assert screen.run.structure.k == 6 and len(screen.run.view["gmm0"][0]) == 6


def test_two_uploads_in_flight_both_named():
    """The second cloud's upload started while the first was being read (a user who drops
    both files at once): the Data section then named cloud 0 as the preset's although its
    upload was in use (each upload copied the names in use when it started)."""
    screen = CoupledEMScreen()
    queued = []
    screen.worker.submit = lambda what, fn, done, failed, **kw: queued.append((fn, done))
    for which in (0, 1):
        screen.upload(_cloud_csv(which), f"cloud{which}.csv", which=which)
    for fn, done in queued:  # in order, as the worker runs them: both started before
        done(fn())
    in_use = screen.data_in_use.object
    assert "cloud 0 from uploaded cloud0.csv (300 points)" in in_use, in_use
    assert "cloud 1 from uploaded cloud1.csv (300 points)" in in_use, in_use
