"""The app's own widgets: a value typed out of range is refused aloud and put back,
before any watcher sees it; a labelled checkbox is a plain boolean widget."""

import panel as pn
import param
from bokeh.document import Document

from gmmot.widgets import BoundedFloatInput, BoundedIntInput, LabelledCheckbox


class _Model(param.Parameterized):
    n = param.Integer(default=1500, bounds=(10, 1_000_000))


def _typed(widget, value) -> None:
    """What Panel does with a value the browser sent (``_process_events``)."""
    widget._process_events({"value": value})


def test_a_typed_value_out_of_range_is_refused_with_its_range_and_put_back():
    model, said = _Model(), []
    field = BoundedIntInput.from_param(model.param.n, label="Points", warn=said.append)
    root = field.get_root(Document())
    root.value = 3  # the browser's field changes: Panel processes it as a browser event
    assert field.value == 1500 and model.n == 1500
    assert said == ["Points: 3 refused; it must lie in 10-1,000,000. Kept 1,500."]
    assert root.value == 1500  # the field shows the kept value again
    _typed(field, 2000)  # a good value goes through, without a word
    assert model.n == 2000 and len(said) == 1


def test_no_watcher_sees_a_refused_value():
    said, seen = [], []
    field = BoundedIntInput(label="N", value=200, start=2, end=5000, warn=said.append)
    field.param.watch(lambda e: seen.append(e.new), "value")
    _typed(field, 9000)
    _typed(field, None)  # an emptied field
    assert field.value == 200 and seen == [] and len(said) == 2
    assert "2-5,000" in said[0]
    alpha = BoundedFloatInput(label="alpha", value=50.0, start=1e-3, end=1e6, warn=said.append)
    _typed(alpha, 0.0)
    assert alpha.value == 50.0 and "0.001-1,000,000" in said[-1]


def test_labelled_checkbox_is_a_boolean_widget():
    box = LabelledCheckbox(label="balanced", value=True)
    seen = []
    box.param.watch(lambda e: seen.append(e.new), "value")
    box.value = False
    assert seen == [False] and box.label == "balanced"
    assert isinstance(pn.panel(box), LabelledCheckbox)


def test_an_option_slider_label_has_one_writer_and_follows_the_value():
    """DiscreteSlider's label had two writers (a JS link in the browser and the server):
    a fast drag on a busy server left 0.316 shown while 1.78 was in effect. The option
    slider's label is written by the server alone, from the value in effect."""
    from bokeh.models import Slider

    from gmmot.widgets import OptionSlider
    from gmmot_runs.knobs import log_grid

    opts = log_grid(-1, 1)
    for cls, links in ((pn.widgets.DiscreteSlider, True), (OptionSlider, False)):
        w = cls(label="epsilon", options=opts, value=opts["0.316"])
        root = w.get_root(Document())
        inner = next(iter(root.select({"type": Slider})))
        assert bool(inner.js_property_callbacks) is links, cls
    for label in ("1.78", "0.1", "1.78"):  # drags reported by the browser, in order
        w._slider._process_events({"value": list(opts).index(label)})
        assert w.value == opts[label]
        assert w._text.value.endswith(f"<b>{label}</b>"), w._text.value
