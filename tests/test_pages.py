"""AppTest runs of the Axioms, Trust and Methods pages (a tiny random CNN stands in for the zoo model: the pages'
wiring is under test here; the metrics themselves are tested against known answers in test_metrics.py)."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT

TIMEOUT = 240  # the first run imports torch and the explainers; 2 shared CPU cores


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "ui" / name), default_timeout=TIMEOUT)


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def metrics(at: AppTest) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def chart(at: AppTest, key: str) -> dict:
    return next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith("-" + key))


def array(values) -> np.ndarray:
    """A plotly JSON array: a plain list, or numpy data as {"dtype", "bdata": base64}."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values)


def test_axioms_page_runs_the_experiments(tiny_model):
    at = ok(page("page_axioms.py").run())
    values = metrics(at)
    assert values[:3] == [("f(x) − f(x′)", "1.000"), ("Gradient × input", "0.000"), ("Integrated Gradients", "1.000")]
    gradient_at_baseline, gradient_at_input = float(values[3][1]), float(values[5][1])
    assert gradient_at_baseline < 1e-3 and gradient_at_input < 1e-3  # saturated at both ends ...
    assert float(values[6][1]) == pytest.approx(float(values[4][1]), abs=2e-3)  # ... yet IG recovers the change

    bars = {trace["name"]: trace["y"] for trace in chart(at, "axioms_invariance_chart")["data"]}
    assert bars["IG on f"] == pytest.approx([1.5, -0.5], abs=1e-3) and bars["IG on g"] == pytest.approx([1.5, -0.5],
                                                                                                      abs=1e-3)
    assert bars["DeepLIFT on f"] == pytest.approx([1.5, -0.5], abs=1e-4)
    assert bars["DeepLIFT on g"] == pytest.approx([2.0, -1.0], abs=1e-4)
    assert any("differ by up to 0.50" in c.value for c in at.caption)

    table = at.dataframe[0].value
    assert list(table["method"]) == ["Integrated Gradients", "Expected Gradients", "DeepLIFT", "gradient × (x − x′)"]
    assert table.set_index("method").loc["DeepLIFT", "relative error"] < 1e-3

    at.slider(key="axioms_sensitivity_x").set_value(0.5)
    at.slider(key="axioms_invariance_x1").set_value(0.5)  # below 1 both nets give 0
    ok(at.run())
    assert metrics(at)[:3] == [("f(x) − f(x′)", "0.500"), ("Gradient × input", "0.500"),
                               ("Integrated Gradients", "0.500")]
    assert any("Drag x past 1" in c.value for c in at.caption)
    assert all(v == pytest.approx([0, 0], abs=1e-6) for v in
               (t["y"] for t in chart(at, "axioms_invariance_chart")["data"]))


def test_trust_page_ranks_methods_and_runs_the_sanity_check(tiny_model):
    at = ok(page("page_trust.py").run())
    methods = ["Saliency (gradient)", "Guided backpropagation", "Grad-CAM", "Integrated Gradients"]
    curves = chart(at, "trust_curves_chart")["data"]
    assert len(curves) == 2 * (len(methods) + 1)  # deletion and insertion per method, plus the random order
    assert all(array(trace["x"])[0] == 0 and array(trace["x"])[-1] == 1 for trace in curves)
    ranking = at.dataframe[0].value
    assert sorted(ranking["method"]) == sorted(methods + ["random order"])  # chance is ranked with the methods
    assert list(ranking["mean rank"]) == sorted(ranking["mean rank"])
    assert ranking["randomisation similarity ↓"].isna().all()  # the check has not been run yet
    assert not [c for c in at.get("plotly_chart") if c.proto.id.endswith("trust_cascade_chart")]

    at.button(key="trust_run_cascade").click()
    ok(at.run())
    lines = chart(at, "trust_cascade_chart")["data"]
    assert [line["name"] for line in lines] == methods
    low = chart(at, "trust_cascade_chart")["layout"]["yaxis"]["range"][0]
    assert low <= min(min(array(line["y"])) for line in lines)  # no point outside the plot
    assert all(array(line["y"])[0] == pytest.approx(1.0) and line["x"][0] == "original" for line in lines)
    assert any("lose their resemblance" in c.value or "stay similar" in c.value for c in at.caption)
    assert at.dataframe[0].value["randomisation similarity ↓"].notna().all()

    at.selectbox(key="trust_fill").set_value("black")
    at.multiselect(key="trust_methods").set_value(["grad_cam"])
    ok(at.run())
    assert len(chart(at, "trust_curves_chart")["data"]) == 4 and len(at.dataframe[0].value) == 2


def test_methods_page_shows_every_card_and_filters():
    at = ok(page("page_methods.py").run())
    titles = [s.value for s in at.subheader]
    from teaching.cards import card, card_ids

    assert sorted(titles) == sorted(card(m)["title"] for m in card_ids())  # every card, once
    assert {"Integrated Gradients", "SmoothGrad (option)", "XRAI", "Eigen-CAM"} <= set(titles)
    at.text_input(key="methods_filter").input("class-discriminative")
    ok(at.run())
    assert {"Grad-CAM", "Guided Backpropagation"} <= {s.value for s in at.subheader} < set(titles)


def test_pages_run_inside_the_app(tiny_model):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.session_state["methods"] = ["grad_cam"]
    ok(at.run())
    titles = {"page_methods.py": "Methods", "page_axioms.py": "Axioms, as experiments",
              "page_trust.py": "Can these maps be trusted?"}
    for name, title in titles.items():
        at.switch_page(f"ui/{name}")
        ok(at.run())
        assert [t.value for t in at.title][-1] == title and at.sidebar.children  # the shared sidebar is drawn too


def test_trust_page_ranks_the_cams_and_path_variants_of_methods_iii(tiny_model):
    from explainers import method_info

    added = ["xgrad_cam", "eigen_cam", "ablation_cam", "score_cam", "guided_ig", "blur_ig", "xrai"]
    at = ok(page("page_trust.py").run())
    at.multiselect(key="trust_methods").set_value(added)
    ok(at.run())
    ranking = at.dataframe[0].value
    assert sorted(ranking["method"]) == sorted([method_info(m).title for m in added] + ["random order"])
    assert ranking["mean rank"].notna().all()
