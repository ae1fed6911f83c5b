"""Plot helpers: the views keep every value in sight."""

import numpy as np

from gmmot.plots.coupling import fit_mass_axis, mass_curve_data, mass_curve_figure


def test_the_mass_axis_follows_the_total_mass():
    """F = 2.8 (eps = 10) was off the fixed [0, 2] axis; the axis widens to keep F and its
    point on the curve in view, and narrows back."""
    fig, src = mass_curve_figure()
    for total, end in ((0.9, 2.0), (2.8, 4.0), (7.0, 16.0), (1.1, 2.0), (float("nan"), 2.0)):
        src.data = mass_curve_data(total)
        fit_mass_axis(fig, total)
        assert fig.x_range.end == end
        curve = fig.select_one({"name": "curve"}).data_source.data
        assert curve["x"].max() == end and np.all(np.isfinite(curve["y"]))
        if np.isfinite(total):
            assert src.data["x"][0] <= fig.x_range.end


def test_descent_layers_can_be_hidden():
    """Cells, their colours, the Lloyd segments and the Diracs toggle one by one."""
    from gmmot.plots.cells import LAYERS, show_layers, target_figure

    fig, _ = target_figure()
    show_layers(fig, ["Diracs"])
    assert not fig.select_one({"name": "cells"}).visible
    assert not fig.select_one({"name": "segments"}).visible
    assert fig.select_one({"name": "diracs"}).visible
    show_layers(fig, ["cells", "segments to centroids"])
    cells = fig.select_one({"name": "cells"})
    assert cells.visible and cells.glyph.fill_alpha == 0.0  # outlines only, no colours
    show_layers(fig, list(LAYERS))
    assert cells.glyph.fill_alpha > 0 and fig.select_one({"name": "segments"}).visible


def test_links_carry_their_growth_factor_and_a_wide_hover_target():
    """The pair view writes each path's growth factor on its link, with the one
    definition the bars use: (row_k / a_k) / (col_l / b_l), the ratio of the two
    components' 'marginal / weight' (the bars said x0.64 where the link said x1.90)."""
    import jax.numpy as jnp

    from gmmot.plots.coupling import pair_data, pair_figure, reweighting_data
    from gmmot_core.gmm_ot import couple
    from gmmot_core.mixture import GMM

    covs = jnp.tile(jnp.eye(2) * 0.1, (2, 1, 1))
    g0 = GMM(jnp.array([0.7, 0.3]), jnp.array([[0.0, 0.0], [3.0, 0.0]]), covs)
    g1 = GMM(jnp.array([0.3, 0.7]), jnp.array([[0.0, 1.0], [3.0, 1.0]]), covs)
    rep = couple(g0, g1, 0.1, 0.5, solver="sinkhorn")  # unbalanced: mass is created
    view = {"gmm0": tuple(np.asarray(x) for x in g0), "gmm1": tuple(np.asarray(x) for x in g1)}
    view["report"] = rep
    links = pair_data(view)["links"]
    _, bars = reweighting_data(view)
    share = dict(zip(bars["x"], bars["factor"], strict=True))  # marginal / weight per bar
    for path, factor, label in zip(links["path"], links["factor"], links["label"], strict=True):
        src, dst = path.split(" -> ")
        np.testing.assert_allclose(factor, share[src] / share[dst], rtol=1e-5)
        assert label in ("", f"×{factor:.2f}")
    assert any(links["label"])
    fig, _ = pair_figure()
    hover = next(t for t in fig.tools if type(t).__name__ == "HoverTool")
    assert hover.renderers[0].glyph.line_width == 16  # the invisible wide hit target


def test_a_trace_of_one_step_is_drawn_as_a_point():
    """Just after Reset a trace has one value: a line alone draws nothing for it."""
    from bokeh.models import Scatter

    from gmmot.plots.traces import trace_data, trace_figure

    fig, src = trace_figure("W2²", "W2²")
    src.data = trace_data(np.array([0.05]))
    on_src = [r for r in fig.renderers if getattr(r, "data_source", None) is src]
    assert any(isinstance(r.glyph, Scatter) for r in on_src)
    assert len(src.data["step"]) == 1


def test_growth_labels_are_drawn_over_the_means_and_the_legend_clears_the_bars():
    """The links' growth labels sat under the mean markers and ellipses (at K = 6 "×1.00"
    read like "x00"): they are now the last renderer of the pair plot. The reweighting
    legend sat inside the plot over the tops of the bars: it is now above the plot."""
    from bokeh.models import GlyphRenderer, Legend, Text

    from gmmot.plots.coupling import pair_figure, reweighting_figure

    fig, _ = pair_figure()
    glyphs = [r for r in fig.renderers if isinstance(r, GlyphRenderer)]
    assert isinstance(glyphs[-1].glyph, Text) and glyphs[-1].glyph.text == "label"
    bars, _ = reweighting_figure()
    assert any(isinstance(m, Legend) for m in bars.above)
    assert not any(isinstance(m, Legend) for m in bars.center)
