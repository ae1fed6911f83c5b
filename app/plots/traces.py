"""Loss traces: the coupled-EM Q0 / Q1 / transport / objective panels, and one log-scale trace.

Pure functions: numpy in, Bokeh figures or column data out; no state, no Panel."""

from __future__ import annotations

import numpy as np
from bokeh.models import ColumnDataSource, PrintfTickFormatter, Span
from bokeh.plotting import figure

from gmmot.plots.clouds import styled_figure
from gmmot_runs.figures import PALETTE

__all__ = [
    "TRACE_COLORS",
    "mark_step",
    "trace_data",
    "trace_figure",
    "traces_data",
    "traces_figures",
]


TRACE_COLORS = {
    "q0": PALETTE[0],
    "q1": PALETTE[1],
    "objective": PALETTE[2],
    "transport": PALETTE[3],
}


def traces_figures() -> tuple[list[figure], ColumnDataSource]:
    """Two panels sharing x: log-likelihood terms + objective, and the transport term."""
    src = ColumnDataSource({k: [] for k in ("it", "q0", "q1", "objective", "transport")})
    f1 = styled_figure("Q0, Q1 and objective", height=260, x_axis_label="EM iteration")
    for k in ("q0", "q1", "objective"):
        f1.line("it", k, source=src, color=TRACE_COLORS[k], line_width=2, legend_label=k)
    f1.legend.location = "bottom_right"
    f2 = styled_figure(
        "transport (reg_ot_cost)", height=260, x_axis_label="EM iteration", x_range=f1.x_range
    )
    f2.line("it", "transport", source=src, color=TRACE_COLORS["transport"], line_width=2)
    return [f1, f2], src


def traces_data(traces, n: int) -> dict:
    n = min(n, len(traces.q0))
    return {
        "it": np.arange(n),
        "q0": traces.q0[:n],
        "q1": traces.q1[:n],
        "objective": traces.objective[:n],
        "transport": traces.transport[:n],
    }


def trace_figure(title: str, y_label: str) -> tuple[figure, ColumnDataSource]:
    """A log-scale trace along the steps, with a marker at the step being looked at."""
    fig = figure(
        title=title,
        height=250,
        sizing_mode="stretch_width",
        min_width=260,
        y_axis_type="log",
        x_axis_label="step",
        y_axis_label=y_label,
        tools="pan,wheel_zoom,reset,save",
    )
    fig.yaxis.formatter = PrintfTickFormatter(format="%.2g")  # "2.5e-03", not "2.500e-3"
    fig.yaxis.ticker.desired_num_ticks = 4  # labels of a narrow log range did not fit
    src = ColumnDataSource({"step": [], "value": []})
    fig.line("step", "value", source=src, line_width=2)
    # a dot per step: a trace of one step (just after Reset) is a point, not an empty plot
    fig.scatter("step", "value", source=src, size=4)
    fig.add_layout(
        Span(dimension="height", location=0, line_color="#d62728", line_dash="dashed",
             line_width=2, visible=False, name="look")
    )  # fmt: skip
    return fig, src


def mark_step(fig: figure, step: int | None) -> None:
    """Mark ``step`` on a :func:`trace_figure` (``None``: no mark, the latest is shown)."""
    span = fig.select_one({"name": "look"})
    span.visible = step is not None
    if step is not None:
        span.location = step


def trace_data(values: np.ndarray, floor: float = 1e-16, start: int = 0) -> dict:
    """A trace from step (or iteration) ``start``, clipped below at ``floor`` (log axis)."""
    v = np.maximum(np.asarray(values, np.float64), floor)
    return {"step": start + np.arange(len(v)), "value": v}
