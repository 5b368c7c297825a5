"""The Streamlit app through `streamlit.testing.v1.AppTest`: pages, widgets, uploads, caching, failure messages.

The real EfficientNet-Lite0 runs the default view, uploads and the class comparison; the loops over every
method, baseline and rule swap in a tiny CNN (patched model loader) because they test wiring, not the model.
"""
from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import ui.common
from conftest import ROOT, TinyImageNetCNN, sample_bytes, shows_source
from models import list_models, wrap

TIMEOUT = 180  # first run imports torch and loads the model; 2 busy CPU cores


def new_app(methods: list[str] | None = None) -> AppTest:
    """The app, not run yet; `methods` preselects the Explore methods (default: the app's own default)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    if methods is not None:
        at.session_state["methods"] = methods
    return at


def ok(at: AppTest) -> AppTest:
    """Assert the run raised nothing and showed no error box; return the app for chaining."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def captions(at: AppTest) -> list[str]:
    return [c for image in at.image for c in image.captions]


def chart_keys(at: AppTest) -> set[str]:
    return {chart.proto.id.split("-", 2)[-1] for chart in at.get("plotly_chart")}


def chart_spec(at: AppTest, key: str) -> dict:
    return next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith("-" + key))


def png_of(jpeg: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_default_view_shows_tiles_and_ig_convergence():
    at = ok(new_app().run())
    assert at.selectbox(key="model").value == "efficientnet_lite0"
    assert "cat" in at.selectbox(key="target").format_func(at.selectbox(key="target").value)
    assert set(at.multiselect(key="methods").value) == {"grad_cam", "integrated_gradients"}
    assert {"Input as the model sees it", "Grad-CAM", "Integrated Gradients"} <= set(captions(at))
    assert {"top5_chart", "ig_along_alpha", "ig_steps_error", "ig_grad_map"} <= chart_keys(at)
    spec = chart_spec(at, "ig_along_alpha")
    names = [trace.get("name", "") for trace in spec["data"]]
    assert any("cumulative" in n for n in names) and any("probability" in n for n in names)
    # The α scrubber moves the gradient map to another node.
    before = chart_spec(at, "ig_grad_map")["layout"]["title"]["text"]
    slider = at.select_slider(key="ig_alpha")
    ok(slider.set_value(float(slider.options[0])).run())
    assert chart_spec(at, "ig_grad_map")["layout"]["title"]["text"] != before
    assert any("completeness error" in c.value for c in at.caption)
    assert len(at.get("download_button")) == 4  # PNG + NPY per tile


def test_every_method_renders_a_tile(tiny_model):
    from explainers import list_methods

    at = ok(new_app().run())
    for info in list_methods():
        ok(at.multiselect(key="methods").set_value([info.id]).run())
        assert info.title in captions(at), (info.id, captions(at))
        assert len(at.get("download_button")) == 2, info.id


def test_inapplicable_methods_are_not_offered_and_say_why(monkeypatch):
    model = TinyImageNetCNN()
    headless = wrap(model, target_layer=model.features, classifier=None, input_size=(48, 48), name="tiny-no-head")
    monkeypatch.setattr(ui.common, "_load_cached", lambda name: headless)
    at = ok(new_app().run())
    offered = at.multiselect(key="methods").options  # shown by title
    assert "CAM" not in offered and "Grad-CAM" in offered
    assert any("Not available for this model" in c.value and "CAM" in c.value for c in at.sidebar.caption)


def test_baselines_and_rules_update_the_convergence_section(tiny_model):
    at = ok(new_app(methods=["integrated_gradients"]).run())
    ok(at.select_slider(key="ig_steps").set_value(8).run())
    seen_errors = set()
    from ui.controls import baseline_names, pretty_name, rule_names

    assert len(baseline_names()) >= 6 and len(rule_names()) >= 5
    for name in baseline_names():
        ok(at.selectbox(key="ig_baseline").set_value(name).run())
        assert any(f"Baseline **{pretty_name(name)}**" in c.value for c in at.caption), name
        seen_errors.add(next(c.value for c in at.caption if "completeness error" in c.value))
    for rule in rule_names():
        ok(at.selectbox(key="ig_rule").set_value(rule).run())
        assert any(f"rule **{pretty_name(rule)}**" in c.value for c in at.caption), rule
        assert "ig_along_alpha" in chart_keys(at)
    assert len(seen_errors) > 1  # different baselines give different results, not a stale cache


def test_bundled_models_can_be_chosen():
    at = ok(new_app(methods=["grad_cam"]).run())
    for info in list_models():
        if info.source != "bundled":
            continue
        ok(at.selectbox(key="model").set_value(info.name).run())
        side = info.input_size[0]
        assert any(f"{side}×{side} px" in c.value for c in at.caption), info.name
        assert "cat" in at.selectbox(key="target").format_func(at.selectbox(key="target").value), info.name


def test_unavailable_model_falls_back_with_a_notice():
    missing = [info for info in list_models() if not info.available]
    if not missing:
        pytest.fail("every model is available here; this test needs one that is not (no torchvision weights)")
    at = ok(new_app(methods=["grad_cam"]).run())
    ok(at.selectbox(key="model").set_value(missing[0].name).run())
    notice = f"**{missing[0].title}** is not installed on this server. Showing **EfficientNet-Lite0 (bundled, 224 px)**"
    assert [w.value for w in at.warning] == [notice + " instead."]  # one notice, no server path in it
    assert "Grad-CAM" in captions(at)  # still explains, with the default model


def test_uploaded_png_shows_its_predictions():
    at = ok(new_app(methods=["grad_cam"]).run())
    assert "cat" in at.selectbox(key="target").format_func(at.selectbox(key="target").value)
    ok(at.file_uploader(key="upload").set_value(("coffee.png", png_of(sample_bytes("coffee.jpg")), "image/png")).run())
    target = at.selectbox(key="target")
    assert any(word in target.format_func(target.value) for word in ("espresso", "cup", "coffee")), target.value
    top5 = chart_spec(at, "top5_chart")["data"][0]["hovertext"]
    assert any("espresso" in name or "cup" in name for name in top5)
    assert shows_source(at, "upload: coffee.png")


def test_the_input_touched_last_wins(tiny_model):
    at = ok(new_app().run())
    ok(at.file_uploader(key="upload").set_value(("coffee.png", png_of(sample_bytes("coffee.jpg")), "image/png")).run())
    assert shows_source(at, "upload: coffee.png")
    ok(at.pills(key="sample").set_value("rocket.jpg").run())  # a sample clicked after the upload shows
    assert shows_source(at, "sample: rocket.jpg")
    ok(at.file_uploader(key="upload").set_value(("astro.png", png_of(sample_bytes("astronaut.jpg")), "image/png")).run())
    assert shows_source(at, "upload: astro.png")


def test_text_file_upload_shows_an_error_and_the_app_recovers():
    at = ok(new_app(methods=["grad_cam"]).run())
    at.file_uploader(key="upload").set_value(("notes.txt", b"not an image at all\n", "text/plain")).run()
    assert not at.exception
    assert any("not an image" in e.value for e in at.error)
    assert "Grad-CAM" in captions(at)  # the sample is still explained meanwhile
    assert [w.value for w in at.main.warning if "could not be used" in w.value]  # said beside the tiles too
    ok(at.file_uploader(key="upload").set_value(("coffee.png", png_of(sample_bytes("coffee.jpg")), "image/png")).run())
    assert shows_source(at, "upload: coffee.png") and not at.main.warning


def test_camera_photo_replaces_the_sample(tiny_model):
    at = ok(new_app().run())
    assert not at.camera_input  # the camera stays off until asked for
    ok(at.toggle(key="use_camera").set_value(True).run())
    ok(at.camera_input(key="camera").upload("shot.jpg", sample_bytes("rocket.jpg")).run())
    assert shows_source(at, "camera: shot.jpg")


def test_a_failing_method_shows_a_message_not_a_traceback(tiny_model, monkeypatch):
    import explainers

    real = explainers.explain

    def flaky(bundle, x, target, method, **options):
        if method == "saliency":
            raise RuntimeError("boom")
        if method == "input_x_gradient":
            raise ValueError("steps must be positive")
        return real(bundle, x, target=target, method=method, **options)

    monkeypatch.setattr(explainers, "explain", flaky)
    ui.common.explanation_store.clear()
    at = new_app().run()
    at.multiselect(key="methods").set_value(["saliency", "input_x_gradient", "grad_cam"]).run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "failed unexpectedly (RuntimeError)" in errors and "boom" not in errors  # no internals leak
    assert "could not run with these settings: steps must be positive" in errors
    assert "Grad-CAM" in captions(at)  # the other tiles still render


def test_display_changes_recompute_nothing(tiny_model, explain_calls):
    at = ok(new_app().run())
    computed = len(explain_calls)
    assert computed >= 1
    ok(at.slider(key="display_alpha").set_value(0.9).run())
    ok(at.selectbox(key="display_cmap").set_value(at.selectbox(key="display_cmap").options[-1]).run())
    ok(at.radio(key="display_mode").set_value("signed").run())
    ok(at.slider(key="display_clip").set_value(5.0).run())
    assert len(explain_calls) == computed
    ok(at.selectbox(key="target").set_value(1).run())  # a new class is new work
    assert len(explain_calls) > computed


def test_compare_page_grad_cam_moves_with_the_class_guided_backprop_does_not():
    at = new_app(methods=["grad_cam"])  # keep Explore's work small
    at.session_state["sample"] = "cat_and_espresso.jpg"
    ok(at.run())
    at.switch_page("ui/page_compare.py")
    ok(at.run())
    cat, espresso = 281, 967  # tabby vs espresso: the two halves of the composite
    ok(at.selectbox(key="compare_a").set_value(cat).run())
    ok(at.selectbox(key="compare_b").set_value(espresso).run())
    correlation = {}
    for method in ("grad_cam", "guided_backprop"):
        ok(at.selectbox(key="compare_method").set_value(method).run())
        assert len([c for c in captions(at) if " for " in c]) == 2
        correlation[method] = float(at.metric[0].value)
    print("correlation of the two classes' maps:", correlation)
    assert correlation["guided_backprop"] > correlation["grad_cam"] + 0.2, correlation


def test_all_five_pages_are_registered(tiny_model):
    at = ok(new_app().run())
    for page in ("ui/page_explore.py", "ui/page_compare.py", "ui/page_axioms.py", "ui/page_trust.py",
                 "ui/page_methods.py"):
        at.switch_page(page)  # raises ValueError for a file st.navigation does not know
    with pytest.raises(ValueError):
        at.switch_page("tests/conftest.py")
    ok(at.switch_page("ui/page_compare.py").run())
    assert at.header[0].value == "Compare classes"


def test_streamlit_config_sets_the_required_options_and_only_real_ones():
    import tomllib

    from streamlit import config

    options = config.get_config_options(force_reparse=True)
    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    flat = {f"{section}.{name}": value for section, values in settings.items() for name, value in values.items()}
    unknown = [key for key in flat if key not in options]
    assert not unknown, f"not Streamlit {__import__('streamlit').__version__} options: {unknown}"
    required = {"server.headless": True, "browser.gatherUsageStats": False, "server.fileWatcherType": "none",
                "server.maxUploadSize": 20, "client.showErrorDetails": "none", "server.enableXsrfProtection": True}
    assert {key: flat.get(key) for key in required} == required
    from models.image_io import MAX_UPLOAD_BYTES
    assert flat["server.maxUploadSize"] * 2**20 == MAX_UPLOAD_BYTES  # the server and read_image agree


def test_streamlit_pin_has_apptest_uploads_and_images():
    import re

    import streamlit

    pin = re.search(r"^streamlit==([\d.]+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert pin, "requirements.txt must pin streamlit exactly"
    assert tuple(int(p) for p in pin.group(1).split(".")[:2]) >= (1, 59)
    assert streamlit.__version__ == pin.group(1)  # the tests ran against the pinned version


def test_app_options_for_score_cam_and_the_path_variants():
    """The app runs Score-CAM on its top channels (library default: all) and hands its path settings only to the
    methods that take them."""
    from explainers import method_info
    from ui.controls import MethodSettings

    settings = MethodSettings(methods=[], steps=16, baseline="white")
    assert method_info("score_cam").options["top_k"] is None
    assert settings.options_for(method_info("score_cam")) == {"top_k": 64}
    assert settings.options_for(method_info("guided_ig")) == {"steps": 16, "baseline": "white"}
    assert settings.options_for(method_info("blur_ig")) == {"steps": 16}
    assert settings.options_for(method_info("xrai")) == {}


def test_smoothgrad_applies_to_the_methods_chosen_for_it(tiny_model, explain_calls):
    at = ok(new_app(methods=["saliency", "integrated_gradients"]).run())
    scope = at.multiselect(key="smooth_methods").value
    assert "saliency" in scope and "integrated_gradients" not in scope  # path methods are not smoothed by default
    ok(at.radio(key="smooth_kind").set_value("smoothgrad").run())
    ok(at.slider(key="smooth_samples").set_value(4).run())
    assert {"Saliency (gradient) + SmoothGrad", "Integrated Gradients"} <= set(captions(at))
    assert "ig_along_alpha" in chart_keys(at)  # IG itself, with its convergence plot, is untouched
    ok(at.multiselect(key="smooth_methods").set_value(["integrated_gradients"]).run())
    assert {"Saliency (gradient)", "Integrated Gradients + SmoothGrad"} <= set(captions(at))


def test_compare_starts_from_the_sidebar_class_and_offers_the_preset(tiny_model):
    at = ok(new_app(methods=["grad_cam"]).run())
    ok(at.selectbox(key="target").set_value(5).run())
    ok(at.switch_page("ui/page_compare.py").run())
    assert at.selectbox(key="compare_a").value == 5 and at.selectbox(key="compare_b").value != 5
    ok(at.button(key="compare_preset_button").click().run())
    assert at.pills(key="sample").value == "cat_and_espresso.jpg"
    assert (at.selectbox(key="compare_a").value, at.selectbox(key="compare_b").value) == (281, 967)
    assert at.selectbox(key="compare_method").value == "grad_cam"


def test_one_current_image_and_an_obvious_way_back(tiny_model):
    at = ok(new_app(methods=["grad_cam"]).run())
    assert at.pills(key="sample").value == "cat.jpg"
    ok(at.file_uploader(key="upload").set_value(("mine.png", png_of(sample_bytes("coffee.jpg")), "image/png")).run())
    assert at.pills(key="sample").value is None and shows_source(at, "upload: mine.png")  # no sample chip lit
    ok(at.pills(key="sample").set_value("cat.jpg").run())  # the chip that was lit before the upload works
    assert shows_source(at, "sample: cat.jpg")
    ok(at.pills(key="sample").set_value(None).run())  # the lit chip clicked again: it stays
    assert at.pills(key="sample").value == "cat.jpg" and shows_source(at, "sample: cat.jpg")
    ok(at.button(key="use_upload").click().run())  # the upload is one click away
    assert shows_source(at, "upload: mine.png") and at.pills(key="sample").value is None
