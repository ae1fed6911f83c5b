"""Static figures of the host-side runs (matplotlib, offline): PNG or SVG bytes."""

from __future__ import annotations

import io

import numpy as np

from gmmot_core.figure import PALETTE, ellipse_outlines

__all__ = ["w2_fit_figure"]


def w2_fit_figure(view: dict, fmt: str = "png") -> bytes:
    """The W2 fit of a :class:`~gmmot_runs.w2_fit.W2FitRun` view: the mixture's density,
    the points' Laguerre cells, both fits' 1- and 2-sigma ellipses (W2 solid, EM dashed
    grey), and W2^2 along the steps (EM's dashed)."""
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
    w2 = view["w2"]
    if len(w2):
        tr.semilogy(np.arange(len(w2)), w2, color="#1f77b4", label="W2 fit")
    tr.axhline(view["em_w2"], color="0.25", ls="--", label="EM")
    tr.set(xlabel="Adam step", ylabel="W2² (no 1/2)", title="W2² along the steps")
    tr.legend()
    tr.grid(True, which="both", alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110)
    return buf.getvalue()
