"""Static figures of every run kind (matplotlib, offline): PNG or SVG bytes.

Used by the app's figure downloads and by ``gmmot replay --figure``; matplotlib is
imported lazily so importing a run module stays light.
"""

from __future__ import annotations

import io

import numpy as np

__all__ = [
    "PALETTE",
    "barycenter_figure",
    "cell_outlines",
    "coupled_em_figure",
    "descent_figure",
    "ellipse_outlines",
    "transport_figure",
    "w2_fit_figure",
]

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
MAX_POINTS = 20_000  # points drawn per cloud (a random subset above this, for file size)


def ellipse_outlines(
    means: np.ndarray, covs: np.ndarray, n_sigma: float, n_vertices: int = 72
) -> np.ndarray:
    """Outlines ``{x : (x - m)^T S^-1 (x - m) = n_sigma^2}`` -> ``[K, n_vertices, 2]``."""
    t = np.linspace(0.0, 2.0 * np.pi, n_vertices)
    circle = np.stack([np.cos(t), np.sin(t)])  # [2, V]
    covs = np.asarray(covs, np.float64)
    vals, vecs = np.linalg.eigh(0.5 * (covs + np.swapaxes(covs, -1, -2)))
    axes = vecs * np.sqrt(np.maximum(vals, 0.0))[:, None, :]  # [K, 2, 2]
    return np.asarray(means, np.float64)[:, None, :] + n_sigma * np.einsum(
        "kij,jv->kvi", axes, circle
    )


def _mixture(ax, gmm: dict, style: str = "-", sigmas: tuple[int, ...] = (1, 2)) -> None:
    w = np.asarray(gmm["weights"])
    means = np.asarray(gmm["means"])
    outlines = {n: ellipse_outlines(means, np.asarray(gmm["covs"]), n) for n in sigmas}
    for j, m in enumerate(means):
        col = PALETTE[j % len(PALETTE)]
        alpha = 0.35 + 0.65 * w[j] / max(w.max(), 1e-12)
        for n_sigma, ls in ((1, style), (2, "--")):
            if n_sigma not in sigmas:
                continue
            e = outlines[n_sigma][j]
            ax.plot(e[:, 0], e[:, 1], ls, color=col, alpha=alpha, lw=1.5)
        ax.plot(*m, "o", color=col, ms=5, mec="k", mew=0.5)


def _cloud(ax, points: np.ndarray, gmm: dict, title: str) -> None:
    pts = np.asarray(points, np.float64)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) > MAX_POINTS:
        pts = pts[np.random.default_rng(0).choice(len(pts), MAX_POINTS, replace=False)]
    ax.scatter(pts[:, 0], pts[:, 1], s=2, c="0.6", alpha=0.4, lw=0, rasterized=True)
    _mixture(ax, gmm)
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")


# each coupling path's growth factor is written on its link, this far along it from cloud
# 0's mean, when the path holds this share of the coupling's mass (the screen does the same)
LINK_LABEL_AT = 0.35
LINK_LABEL_SHARE = 0.04


def link_label(factor: float, share: float) -> str:
    """The text on a coupling path's link: its growth ``factor`` when the path holds
    ``share >= LINK_LABEL_SHARE`` of the coupling's mass, else ''."""
    return f"×{factor:.2f}" if share >= LINK_LABEL_SHARE else ""


def link_label_at(start, end):
    """Where a link's label sits, ``[..., 2]``: LINK_LABEL_AT of the way from ``start``
    (cloud 0's mean) to ``end`` (cloud 1's); two links that cross (0:a -> 1:b and
    0:b -> 1:a) meet at their midpoints, and so would their labels."""
    return start + LINK_LABEL_AT * (end - start)


def coupled_em_figure(results: dict, points0, points1, fmt: str = "png") -> bytes:
    """A 2 x 3 panel figure of ``results`` (a coupled-EM run's results file).

    Panels: each cloud with its mixture (1- and 2-sigma ellipses), both mixtures with the
    coupling as links (width by mass, each main path's growth factor written on it, as on
    the screen), the annotated raw coupling, component masses vs coupling marginals (one
    colour per cloud), and the traces. ``fmt``: ``"png"`` or ``"svg"``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    if fmt not in ("png", "svg"):
        raise ValueError(f"figure format must be png or svg, not {fmt!r}")
    fig = Figure(figsize=(15, 9), layout="constrained")
    axs = fig.subplots(2, 3)
    cp = results["coupling"]
    _cloud(axs[0, 0], points0, results["gmm0"], "cloud 0")
    _cloud(axs[0, 1], points1, results["gmm1"], "cloud 1")

    ax = axs[0, 2]
    raw = np.asarray(cp["raw"])
    m0, m1 = np.asarray(results["gmm0"]["means"]), np.asarray(results["gmm1"]["means"])
    top, total = max(raw.max(), 1e-12), max(raw.sum(), 1e-30)
    factor = np.asarray(cp["path_factor"])
    for i in range(raw.shape[0]):
        for j in range(raw.shape[1]):
            if raw[i, j] > 1e-3 * top:
                ax.plot(
                    *zip(m0[i], m1[j], strict=True),
                    "-",
                    color="0.3",
                    lw=8 * raw[i, j] / top,
                    alpha=0.6,
                    solid_capstyle="round",
                )
            text = link_label(factor[i, j], raw[i, j] / total)
            if text:
                box = {"fc": "white", "alpha": 0.7, "lw": 0, "pad": 1}
                ax.text(*link_label_at(m0[i], m1[j]), text, ha="center", va="center",
                        fontsize=8, bbox=box, zorder=5)  # fmt: skip
    _mixture(ax, results["gmm0"], sigmas=(1,))
    _mixture(ax, results["gmm1"], style="--", sigmas=(1,))
    ax.set_title("coupling between components (mixture 1 dashed)")
    ax.set_aspect("equal", adjustable="datalim")

    ax = axs[1, 0]
    ax.imshow(raw, cmap="Blues")
    for (i, j), v in np.ndenumerate(raw):
        ax.text(
            j,
            i,
            f"{v:.3f}",
            ha="center",
            va="center",
            color="w" if v > 0.6 * top else "k",
            fontsize=9,
        )
    ax.set_xticks(range(raw.shape[1]))
    ax.set_yticks(range(raw.shape[0]))
    ax.set_xlabel("mixture 1 component")
    ax.set_ylabel("mixture 0 component")
    ax.set_title(f"raw coupling (mass F = {cp['total_mass']:.4f}, tau = {cp['tau']:.4f})")

    ax = axs[1, 1]
    w0, w1 = np.asarray(results["gmm0"]["weights"]), np.asarray(results["gmm1"]["weights"])
    row, col = raw.sum(1), raw.sum(0)
    x0, x1 = np.arange(len(w0)), len(w0) + 1 + np.arange(len(w1))
    ax.bar(x0 - 0.2, w0, 0.4, label="component weight", color="0.7")
    ax.bar(x0 + 0.2, row, 0.4, label="coupling marginal, cloud 0", color=PALETTE[0])
    ax.bar(x1 - 0.2, w1, 0.4, color="0.7")
    ax.bar(x1 + 0.2, col, 0.4, label="coupling marginal, cloud 1", color=PALETTE[1])
    ax.set_xticks(np.r_[x0, x1], [f"0:{i}" for i in x0] + [f"1:{j}" for j in range(len(w1))])
    ax.legend(fontsize=8)
    ax.set_title("reweighting: masses vs marginals")

    ax = axs[1, 2]
    tr = results["traces"]
    it = np.arange(len(tr["q0"]))
    for name in ("q0", "q1", "objective"):
        ax.plot(it, tr[name], label=name)
    ax2 = ax.twinx()
    ax2.plot(it, tr["transport"], color="k", ls="--", label="transport")
    ax2.set_ylabel("transport")
    ax.set_xlabel("EM iteration")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"traces (iteration {results['iteration']})")

    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110)
    return buf.getvalue()


def cell_outlines(cells) -> list[np.ndarray]:
    """The polygon ``[count_i, 2]`` of each cell (:class:`~.cells.Cells`)."""
    verts, count = np.asarray(cells.vertices), np.asarray(cells.count)
    return [verts[i, : count[i]] for i in range(len(count))]


def descent_figure(values: np.ndarray, view: dict, fmt: str = "png") -> bytes:
    """Target image, Laguerre cells, Diracs with arrows to their centroids, and W2^2 along
    the steps (log scale), from a :class:`~gmmot_runs.descent.DescentRun` view."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5.5), layout="constrained")
    ax, tr = fig.subplots(1, 2, width_ratios=(1.1, 1))
    from gmmot_runs.descent import target_extent

    sx, sy = target_extent(values)
    ax.imshow(values.T, origin="lower", extent=(0, sx, 0, sy), cmap="Greys", alpha=0.8)
    polys = [p for p in cell_outlines(view["cells"]) if len(p) >= 3]
    ax.add_collection(PolyCollection(polys, facecolors="none", edgecolors="#1f77b4", lw=0.6))
    y, b = view["positions"], view["barycenters"]
    ax.quiver(
        y[:, 0],
        y[:, 1],
        b[:, 0] - y[:, 0],
        b[:, 1] - y[:, 1],
        angles="xy",
        scale_units="xy",
        scale=1,
        color="#d62728",
        width=0.002,
    )
    ax.scatter(y[:, 0], y[:, 1], s=6, c="#d62728", zorder=3)
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", title=f"step {view['step']}")
    tr.semilogy(np.arange(len(view["w2"])), view["w2"], color="#1f77b4")
    tr.set(xlabel="step", ylabel="W2² (no 1/2)", title="W2² along the steps")
    tr.grid(True, which="both", alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110)
    return buf.getvalue()


def barycenter_figure(view: dict, fmt: str = "png") -> bytes:
    """The barycenter notebook's figure: ``-log p`` contours of every input and of the
    barycenter (log-spaced levels, each mixture labelled), the support's 1-sigma ellipses,
    and the cost along the iterations, from a
    :class:`~gmmot_runs.barycenter.BarycenterRun` view."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from gmmot_runs.barycenter import density_grids

    xs, ys, grids, levels = density_grids(view)
    fig = Figure(figsize=(12, 5.5), layout="constrained")
    ax, tr = fig.subplots(1, 2, width_ratios=(1.2, 1))
    names = [f"input {i + 1} (λ={lam:.2f})" for i, lam in enumerate(view["lambdas"])]
    for grid, name, gmm in zip(grids, [*names, "barycenter"], [*view["inputs"], None], strict=True):
        ax.contour(xs, ys, grid, levels=levels, cmap="viridis", linewidths=1.2)
        where = view["means"] if gmm is None else gmm.means
        top = where[np.argmax(where[:, 1])]
        ax.annotate(name, top, xytext=(0, 14), textcoords="offset points", ha="center")
    for o in ellipse_outlines(view["means"], view["covs"], 1.0):
        ax.plot(o[:, 0], o[:, 1], color="#d62728", lw=0.8)
    ax.set(aspect="equal", title=f"inputs and their barycenter (iteration {view['iteration']})")
    costs = view["costs"]
    tr.plot(np.arange(1, len(costs) + 1), costs, "o-", color="#1f77b4")
    tr.set(xlabel="iteration", ylabel="sum_m λ_m OT_eps", title="cost along the iterations")
    tr.grid(True, alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110)
    return buf.getvalue()


def transport_figure(frame: dict, fmt: str = "png") -> bytes:
    """The transport screen at time t: arrows x -> T(x), mu_0 / mu_1 ellipses (dashed),
    ``-log`` density contours and ellipses of mu_t, and the points carried by the map."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 6.5), layout="constrained")
    ax = fig.subplots()
    p, q, c = frame["points"], frame["images"], frame["carried"]
    ax.quiver(p[:, 0], p[:, 1], q[:, 0] - p[:, 0], q[:, 1] - p[:, 1], angles="xy",
              scale_units="xy", scale=1, color="#999999", alpha=0.5, width=0.002)  # fmt: skip
    for gmm, color in ((frame["gmm0"], "#1f77b4"), (frame["gmm1"], "#2ca02c")):
        for o in ellipse_outlines(gmm.means, gmm.covs, 1.0):
            ax.plot(o[:, 0], o[:, 1], "--", color=color, lw=1)
    ax.contour(frame["xs"], frame["ys"], frame["nld"], levels=frame["levels"], cmap="viridis")
    mu = frame["mu"]
    keep = np.asarray(mu.weights) > 1e-4
    for o in ellipse_outlines(np.asarray(mu.means)[keep], np.asarray(mu.covs)[keep], 1.0):
        ax.plot(o[:, 0], o[:, 1], color="#d62728", lw=1.5)
    ax.scatter(c[:, 0], c[:, 1], s=5, color="#ff7f0e", zorder=3)
    ax.set(aspect="equal", title=f"GMM-OT map and mu_t, t = {frame['t']:.2f}")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110)
    return buf.getvalue()


def w2_fit_figure(view: dict, fmt: str = "png") -> bytes:
    """The W2 fit of a :class:`~gmmot_runs.w2_fit.W2FitRun` view: the mixture's density,
    the points' Laguerre cells, both fits' 1- and 2-sigma ellipses (W2 solid, EM dashed
    grey), and the objective the fit descends along the steps (W2^2 + side^2 x mass off
    the box; EM's dashed), as the screen plots it."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5.5), layout="constrained")
    ax, tr = fig.subplots(1, 2, width_ratios=(1.1, 1))
    lo, hi = view["box"]
    ax.imshow(view["values"].T, origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]), cmap="Greys")
    verts, count = view["cell_vertices"], view["cell_count"]
    for c, k in zip(verts, count, strict=True):
        if k >= 3:
            ring = np.vstack([c[:k], c[:1]])
            ax.plot(ring[:, 0], ring[:, 1], color="#1f3b57", lw=0.3, alpha=0.5)
    p = view["points"]
    ax.scatter(p[:, 0], p[:, 1], s=3, c="#d62728", lw=0, zorder=3)
    for gmm, style in ((view["em"], "em"), (view["gmm"], "w2")):
        for n_sigma in (1, 2):
            for j, e in enumerate(ellipse_outlines(gmm["means"], gmm["covs"], n_sigma)):
                if style == "em":
                    ax.plot(e[:, 0], e[:, 1], "--", color="0.25", lw=1.2)
                else:
                    ax.plot(e[:, 0], e[:, 1], "-", color=PALETTE[j % len(PALETTE)], lw=2)
    ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), aspect="equal")
    ax.set_title(f"W2 fit at step {view['step']} (EM dashed)")
    obj = view["objective"]
    if len(obj):
        tr.semilogy(np.arange(len(obj)), obj, color="#1f77b4", label="W2 fit")
    tr.axhline(view["em_objective"], color="0.25", ls="--", label="EM")
    tr.set(
        xlabel="Adam step",
        ylabel="W2² + side² x mass off the box",
        title="objective along the Adam steps",
    )
    tr.legend()
    tr.grid(True, which="both", alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110)
    return buf.getvalue()
