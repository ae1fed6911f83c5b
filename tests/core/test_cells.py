"""Laguerre cells and their exact integrals for a pixel-constant density (float64).

Oracles: closed-form polygon formulas (uniform density) and brute-force clipping of each
cell against every pixel square (any density); the Newton Hessian against central
finite differences of the cell masses.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from gmmot_core.semidiscrete.candidates import (
    Grid,
    by_marked,
    inconsistent_cells,
    ring_candidates,
    subset_sizes,
)
from gmmot_core.semidiscrete.cells import (
    labelled_cells,
    near_cells,
    power_cells,
    repair_cells,
)
from gmmot_core.semidiscrete.density import image_density
from gmmot_core.semidiscrete.hessian import cg, jacobi, laplacian
from gmmot_core.semidiscrete.integrals import cell_integrals, integrals
from gmmot_core.semidiscrete.sizes import Sizes
from gmmot_core.semidiscrete.status import RING_MISS


def _polygon(cells, i):
    c = int(cells.count[i])
    return np.asarray(cells.vertices[i, :c])


def _clip_box(poly, x0, x1, y0, y1):
    """Sutherland-Hodgman clip of a convex polygon [V, 2] by an axis-aligned box."""
    for axis, bound, keep_low in ((0, x0, False), (0, x1, True), (1, y0, False), (1, y1, True)):
        out = []
        for a, b in zip(poly, np.roll(poly, -1, 0), strict=True):
            ina = a[axis] <= bound if keep_low else a[axis] >= bound
            inb = b[axis] <= bound if keep_low else b[axis] >= bound
            if ina:
                out.append(a)
            if ina != inb:
                t = (bound - a[axis]) / (b[axis] - a[axis])
                out.append(a + t * (b - a))
        poly = np.array(out)
        if len(poly) == 0:
            return poly
    return poly


def _moments(poly, c):
    """Area, int (x - c), int |x - c|^2 over a polygon (triangle fan, exact)."""
    area, first, second = 0.0, np.zeros(2), 0.0
    for k in range(1, len(poly) - 1):
        p, q, r = poly[0] - c, poly[k] - c, poly[k + 1] - c
        a = 0.5 * ((q - p)[0] * (r - p)[1] - (q - p)[1] * (r - p)[0])
        area += a
        first += a * (p + q + r) / 3
        second += a / 6 * (p @ p + q @ q + r @ r + p @ q + q @ r + r @ p)
    return area, first, second


@pytest.fixture
def problem(x64, rng):
    values = rng.uniform(0.2, 3.0, (8, 6))  # non-square pixels on a non-unit box
    dens = image_density(values, lo=(-1.0, 0.5), hi=(2.0, 2.0))
    y = jnp.asarray(rng.uniform((-1.0, 0.5), (2.0, 2.0), (12, 2)))
    w = jnp.asarray(rng.normal(size=12) * 0.05)
    return dens, y, w


def test_uniform_density_gives_polygon_moments(x64, rng):
    dens = image_density(np.ones((5, 7)))
    y = jnp.asarray(rng.uniform(0, 1, (30, 2)))
    w = jnp.asarray(rng.normal(size=30) * 0.01)
    cells = power_cells(y, w, dens.lo, dens.hi)
    ints = cell_integrals(cells, y, dens, budget=8192)
    assert int(ints.status) == 0
    for i in range(30):
        area, first, second = _moments(_polygon(cells, i), np.asarray(y[i]))
        # exact up to float64 round-off of sums of O(1) terms
        assert float(ints.mass[i]) == pytest.approx(area, abs=1e-14)
        assert np.allclose(ints.first[i], first, atol=1e-14)
        assert float(ints.second[i]) == pytest.approx(second, abs=1e-14)
    assert float(jnp.sum(ints.mass)) == pytest.approx(1.0, abs=1e-13)


def test_pixel_density_matches_per_pixel_clipping(problem):
    dens, y, w = problem
    cells = power_cells(y, w, dens.lo, dens.hi)
    ints = cell_integrals(cells, y, dens, budget=8192)
    assert int(ints.status) == 0
    rho = np.asarray(dens.rho)
    lo, hi = np.asarray(dens.lo), np.asarray(dens.hi)
    hx, hy = (hi - lo) / rho.shape
    for i in range(len(y)):
        poly, c = _polygon(cells, i), np.asarray(y[i])
        m, f, s = 0.0, np.zeros(2), 0.0
        for a in range(rho.shape[0]):
            for b in range(rho.shape[1]):
                x0, y0 = lo[0] + a * hx, lo[1] + b * hy
                piece = _clip_box(poly, x0, x0 + hx, y0, y0 + hy)
                if len(piece) >= 3:
                    pa, pf, ps = _moments(piece, c)
                    m, f, s = m + rho[a, b] * pa, f + rho[a, b] * pf, s + rho[a, b] * ps
        # the boundary walk and the per-pixel clipping are both exact: they agree to
        # float64 round-off (relative 1e-12 leaves room for the prefix-sum cancellation)
        assert float(ints.mass[i]) == pytest.approx(m, rel=1e-12, abs=1e-15)
        assert np.allclose(ints.first[i], f, rtol=1e-11, atol=1e-15)
        assert float(ints.second[i]) == pytest.approx(s, rel=1e-11, abs=1e-15)


def test_newton_hessian_is_the_mass_jacobian(problem):
    dens, y, w = problem
    n = len(y)
    sizes = Sizes(32, 8192, Grid(0, 0, 0))
    ints = integrals(y, w, dens, sizes)
    matvec = laplacian(y, ints)
    lap = np.stack([np.asarray(matvec(jnp.eye(n)[i])) for i in range(n)], 1)
    h = 1e-6
    fd = np.stack(
        [
            (
                np.asarray(integrals(y, w + h * jnp.eye(n)[i], dens, sizes).mass)
                - np.asarray(integrals(y, w - h * jnp.eye(n)[i], dens, sizes).mass)
            )
            / (2 * h)
            for i in range(n)
        ],
        1,
    )
    # central differences: truncation O(h^2) plus round-off 1e-16/h ~ 1e-10
    assert np.abs(lap - fd).max() < 1e-8
    assert np.allclose(lap, lap.T, atol=1e-15)
    assert np.allclose(np.diag(lap), matvec.diag)
    # CG with the Jacobi preconditioner solves L x = rhs (rhs summing to zero) to the
    # tolerance asked
    prec = jacobi(matvec)
    rhs = jnp.asarray(np.random.default_rng(0).normal(size=n))
    rhs = rhs - matvec.diag * jnp.sum(rhs) / jnp.sum(matvec.diag)
    x = cg(matvec, prec, matvec.diag, rhs, 500, 1e-12)
    assert np.linalg.norm(lap @ np.asarray(x) - np.asarray(rhs)) <= 1e-11 * np.linalg.norm(rhs)


def test_cells_flag_stacked_diracs(x64):
    dens = image_density(np.ones((4, 4)))
    y = jnp.asarray([[0.2, 0.2], [0.2, 0.2], [0.7, 0.6]])
    cells = power_cells(y, jnp.zeros(3), dens.lo, dens.hi)
    assert int(cells.status) & 8


def _brute_force_masses(y, w, values, sub=64):
    """Cell masses by assigning sub-pixel centres to the lowest power (an independent
    check of the topology; good to the sampling error ~ perimeter / sub)."""
    wd, ht = values.shape
    xs = (np.arange(wd * sub) + 0.5) / (wd * sub)
    ys = (np.arange(ht * sub) + 0.5) / (ht * sub)
    px, py = np.meshgrid(xs, ys, indexing="ij")
    pts = np.stack([px.ravel(), py.ravel()], 1)
    rho = np.kron(values, np.ones((sub, sub))).ravel()
    power = ((pts[:, None, :] - y[None]) ** 2).sum(-1) - w[None]
    owner = power.argmin(1)
    return np.bincount(owner, rho, len(y)) / rho.sum()


@pytest.mark.slow
def test_grid_candidates_give_the_all_pairs_diagram(x64, rng):
    """The binned candidate search (its outside-the-block bound, and the rescue of the
    cells it does not certify) builds the same cells as clipping against every Dirac,
    with weights uneven enough that some cells reach far past their block."""
    values = rng.uniform(0.5, 2.0, (16, 16))
    dens = image_density(values)
    y = rng.uniform(0, 1, (400, 2))
    w = rng.normal(size=400) * 2e-3
    w[:3] += 0.01  # three large cells
    full = power_cells(jnp.asarray(y), jnp.asarray(w), dens.lo, dens.hi, grid=Grid(0, 0, 0))
    binned = power_cells(jnp.asarray(y), jnp.asarray(w), dens.lo, dens.hi, grid=Grid(8, 64, 1, 200))
    assert int(full.status) == 0 and int(binned.status) == 0
    a = cell_integrals(full, jnp.asarray(y), dens, 16384)
    b = cell_integrals(binned, jnp.asarray(y), dens, 16384)
    # same polygons, clipped in a different order: equal to round-off
    assert np.allclose(a.mass, b.mass, rtol=0, atol=1e-15)
    assert np.allclose(a.second, b.second, rtol=0, atol=1e-15)
    # and the right polygons: sub-pixel sampling agrees to its own error (~1e-4 here)
    brute = _brute_force_masses(y, w, values, sub=16)
    assert np.abs(np.asarray(a.mass) - brute).max() < 2e-4


def test_hints_change_the_work_not_the_cells(x64, rng):
    """Clipping first by the neighbours of another diagram (as Newton does with the
    previous weights) gives the same cells, even from a poor or random hint."""
    dens = image_density(rng.uniform(0.5, 2.0, (16, 16)))
    y = jnp.asarray(rng.uniform(0, 1, (150, 2)))
    w = jnp.asarray(rng.normal(size=150) * 1e-2)
    plain = power_cells(y, w, dens.lo, dens.hi)
    near = power_cells(y, 0.9 * w, dens.lo, dens.hi)
    random = jnp.asarray(rng.integers(-1, 150, (150, 32)), jnp.int32)
    for hint in (near.labels, random):
        hinted = power_cells(y, w, dens.lo, dens.hi, hint=hint)
        assert int(hinted.status) == 0
        a, b = cell_integrals(plain, y, dens, 8192), cell_integrals(hinted, y, dens, 8192)
        assert np.allclose(a.mass, b.mass, rtol=0, atol=1e-15)
        assert np.allclose(a.first, b.first, rtol=0, atol=1e-15)


def test_too_few_rescued_cells_are_flagged_not_silent(x64, rng):
    dens = image_density(np.ones((8, 8)))
    y = jnp.asarray(rng.uniform(0, 1, (300, 2)))
    w = jnp.asarray(rng.normal(size=300) * 0.05)  # uneven: far Diracs cut many cells
    cells = power_cells(y, w, dens.lo, dens.hi, grid=Grid(6, 64, 1, 2))
    assert int(cells.status) & 2


@pytest.mark.slow
def test_ring_cells_are_exact_or_flagged(x64, rng):
    """Cells clipped only by candidates from a nearby diagram (its neighbours and edge
    flips), partly replayed from its edge sequences, equal the all-pairs cells when they
    tile the box; a ring that misses a neighbour is flagged, never silently used."""
    dens = image_density(rng.uniform(0.5, 2.0, (16, 16)))
    y = jnp.asarray(rng.uniform(0, 1, (150, 2)))
    w = jnp.asarray(rng.normal(size=150) * 4e-4)  # uneven, but no cell is empty
    full = power_cells(y, w, dens.lo, dens.hi, grid=Grid(0, 0, 0))
    assert int(jnp.min(full.count)) > 0
    near = power_cells(y, 0.999 * w, dens.lo, dens.hi, grid=Grid(0, 0, 0))
    ring, _ = ring_candidates(near.labels)
    cells = power_cells(y, w, dens.lo, dens.hi, hint=near.labels, ring=ring)
    # from the Voronoi cells one ring misses flips; near_cells widens it from what it got
    far = power_cells(y, 0.0 * w, dens.lo, dens.hi, grid=Grid(0, 0, 0))
    one, _ = ring_candidates(far.labels)
    assert int(power_cells(y, w, dens.lo, dens.hi, ring=one).status) & RING_MISS
    sizes = Sizes(32, 8192, Grid(0, 0, 0))
    widened = near_cells(y, w, dens.lo, dens.hi, sizes, far.labels, fallback=False)
    a = cell_integrals(full, y, dens, 8192)
    for c in (cells, widened):
        assert int(c.status) == 0
        b = cell_integrals(c, y, dens, 8192)
        # the same polygons, built differently: equal to round-off
        assert np.allclose(a.mass, b.mass, rtol=0, atol=1e-15)
        assert np.allclose(a.second, b.second, rtol=0, atol=1e-15)
    # one neighbour per cell is not enough: the cells overlap and that is flagged
    poor = jnp.where(jnp.arange(ring.shape[1])[None, :] < 1, ring, -1)
    bad = power_cells(y, w, dens.lo, dens.hi, ring=poor)
    assert int(bad.status) & RING_MISS


def test_a_diagram_rebuilt_from_its_own_labels_is_exact_and_others_are_flagged(x64, rng):
    """The cells a descent frame draws come from the solve's labels alone: equal to the
    all-pairs cells (inert Diracs empty); another diagram's labels are flagged."""
    dens = image_density(rng.uniform(0.5, 2.0, (16, 16)))
    y = jnp.asarray(rng.uniform(0, 1, (160, 2)))
    w = jnp.asarray(rng.normal(size=160) * 4e-4)
    active = jnp.arange(160) < 150  # the last 10 inert, as padding
    full = power_cells(y, w, dens.lo, dens.hi, grid=Grid(0, 0, 0), active=active)
    assert np.any(np.asarray(full.count)[:150] == 0)  # uneven weights: an empty cell too
    again = labelled_cells(y, w, dens.lo, dens.hi, 32, full.labels, active)
    assert int(again.status) == 0 and np.all(np.asarray(again.count)[150:] == 0)
    a, b = cell_integrals(full, y, dens, 8192), cell_integrals(again, y, dens, 8192)
    assert np.allclose(a.mass, b.mass, rtol=0, atol=1e-15)
    assert np.allclose(a.second, b.second, rtol=0, atol=1e-15)
    voronoi = power_cells(y, 0.0 * w, dens.lo, dens.hi, grid=Grid(0, 0, 0), active=active)
    wrong = labelled_cells(y, w, dens.lo, dens.hi, 32, voronoi.labels, active)
    assert int(wrong.status) & RING_MISS


@pytest.mark.parametrize("mutual", [False, True])
def test_a_missed_cut_is_found_and_repaired_cell_by_cell(x64, rng, mutual):
    """A ring diagram whose cell ``i`` lacks its neighbour ``j`` (and ``j`` lacks ``i``
    when ``mutual``) does not tile; its unconfirmed vertices mark ``i``'s surroundings
    (a handful of cells, none in the exact diagram), and rebuilding those alone from the
    widened ring gives the all-pairs cells again."""
    dens = image_density(rng.uniform(0.5, 2.0, (16, 16)))
    y = jnp.asarray(rng.uniform(0, 1, (150, 2)))
    w = jnp.asarray(rng.normal(size=150) * 4e-4)
    full = power_cells(y, w, dens.lo, dens.hi, grid=Grid(0, 0, 0))
    assert not bool(jnp.any(inconsistent_cells(full.labels)))
    ring, _ = ring_candidates(full.labels)
    i = int(jnp.argmax(full.count))
    j = int(full.labels[i, 0]) if int(full.labels[i, 0]) >= 0 else int(full.labels[i, 1])
    ring = ring.at[i].set(jnp.where(ring[i] == j, -1, ring[i]))
    if mutual:
        ring = ring.at[j].set(jnp.where(ring[j] == i, -1, ring[j]))
    bad = power_cells(y, w, dens.lo, dens.hi, ring=ring)
    assert int(bad.status) & RING_MISS
    marked = inconsistent_cells(bad.labels)
    assert bool(marked[i]) and 0 < int(jnp.sum(marked)) <= 12
    sel = jnp.nonzero(marked, size=16, fill_value=150)[0]
    fixed, _ = repair_cells(y, w, dens.lo, dens.hi, bad, sel, 16)
    assert int(fixed.status) == 0
    a, b = (cell_integrals(c, y, dens, 8192) for c in (full, fixed))
    assert np.allclose(a.mass, b.mass, rtol=0, atol=1e-15)


def test_ring_rows_and_marked_subsets(x64, rng):
    """The ring of a few rows is those rows of the full ring; work on marked rows runs on
    the smallest static subset that holds them, and the branch for none or too many."""
    y = jnp.asarray(rng.uniform(0, 1, (150, 2)))
    full = power_cells(y, jnp.zeros(150), jnp.zeros(2), jnp.ones(2), grid=Grid(0, 0, 0))
    rows = jnp.asarray([3, 77, 149, 0])
    for around in (False, True):
        every, _ = ring_candidates(full.labels, around=around)
        some, _ = ring_candidates(full.labels, around=around, rows=rows)
        assert np.array_equal(np.asarray(every)[np.asarray(rows)], np.asarray(some))
    assert subset_sizes(5000, 625) == [64, 625]
    assert subset_sizes(5000, 1250) == [64, 512, 1250]
    assert subset_sizes(100, 25) == [25]

    def some(sel, x):
        return x + sel.shape[0] * 1000 + jnp.sum(sel < 300)  # subset size, rows marked

    none, many = (lambda x: x - 1), (lambda x: x - 2)
    for k, want in ((0, -1), (5, 64_005), (64, 64_064), (65, 300_065), (300, 300_300)):
        mask = jnp.zeros(300, bool).at[rng.choice(300, k, replace=False)].set(True)
        assert int(by_marked(mask, 300, some, none, many, jnp.asarray(0))) == want
    mask = jnp.ones(300, bool)
    assert int(by_marked(mask, 299, some, none, many, jnp.asarray(0))) == -2


def test_the_short_and_the_full_piece_walk_agree(problem, monkeypatch):
    """The walk on the smaller piece budget (taken when the bound on the pieces fits)
    gives the integrals of the full one bit for bit."""
    import gmmot_core.semidiscrete.integrals as lg
    from gmmot_core.semidiscrete.status import OVERFLOW_PIECES

    dens, y, w = problem
    cells = power_cells(y, w, dens.lo, dens.hi)
    assert lg.small_budget(65536) == 40960 and lg.small_budget(8192) == 8192
    short = cell_integrals(cells, y, dens, budget=65536)
    monkeypatch.setattr(lg, "small_budget", lambda budget: 64)  # below the bound: full walk
    full = cell_integrals(cells, y, dens, budget=65536)
    assert int(short.status) == int(full.status) == 0
    # more than 64 pieces: the bound did not fit the patched short walk
    assert int(cell_integrals(cells, y, dens, budget=64).status) & OVERFLOW_PIECES
    for a, b in zip(short, full, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
