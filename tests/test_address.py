"""The address bar reproduces the view (../shared/CONTRACT.md, "The app's address bar")."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, sample_bytes, shows_source
from ui.address import UPLOADED, parse_view

TIMEOUT = 240


def app_with(params: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    for name, value in params.items():
        at.query_params[name] = value
    return at


def warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


def test_every_parameter_is_read():
    values, notes = parse_view({"sample": "cat_and_espresso", "model": "efficientnet_lite0", "target": "967",
                                "methods": "saliency,grad_cam", "steps": "16", "rule": "gauss_legendre",
                                "baseline": "blur"})
    assert notes == []
    assert values == {"sample": "cat_and_espresso.jpg", "model": "efficientnet_lite0", "address_target": 967,
                      "methods": ["saliency", "grad_cam"], "ig_steps": 16, "ig_rule": "gauss_legendre",
                      "ig_baseline": "blur"}


@pytest.mark.parametrize("name, value, said", [
    ("sample", "dog", "the samples are"), ("model", "alexnet", "the models are"), ("target", "-3", "whole number"),
    ("target", "2.5", "whole number"), ("steps", "100", "one of 4, 8"), ("steps", "many", "one of"),
    ("rule", "simpson", "the rules are"), ("baseline", "<b>red</b>", "the baselines are"),
    ("methods", "nope,also_nope", "Unknown methods"), ("sample", UPLOADED, "cannot travel in a link"),
])
def test_an_invalid_value_is_ignored_with_a_note(name, value, said):
    values, notes = parse_view({name: value})
    assert values == {} and len(notes) == 1 and said in notes[0]


def test_known_methods_are_kept_when_some_are_unknown():
    values, notes = parse_view({"methods": "grad_cam,bogus,grad_cam,saliency"})
    assert values == {"methods": ["grad_cam", "saliency"]}
    assert notes == ["Unknown methods in the link were left out: bogus."]


def test_a_link_opens_on_its_view_and_the_address_follows_changes(tiny_model):
    at = app_with({"sample": "rocket", "target": "417", "methods": "saliency,grad_cam", "steps": "16",
                   "rule": "gauss_legendre", "baseline": "white"}).run()
    assert not at.exception and not at.error and warnings(at) == []
    assert at.pills(key="sample").value == "rocket.jpg" and shows_source(at, "sample: rocket.jpg")
    assert at.selectbox(key="target").value == 417
    assert at.multiselect(key="methods").value == ["saliency", "grad_cam"]
    assert at.select_slider(key="ig_steps").value == 16
    assert at.selectbox(key="ig_rule").value == "gauss_legendre" and at.selectbox(key="ig_baseline").value == "white"
    assert {"sample": "rocket", "target": "417", "methods": "saliency,grad_cam", "steps": "16",
            "rule": "gauss_legendre", "baseline": "white"}.items() <= dict(at.query_params).items()
    at.select_slider(key="ig_steps").set_value(64).run()
    at.multiselect(key="methods").set_value(["grad_cam"]).run()
    assert at.query_params["steps"] == "64" and at.query_params["methods"] == "grad_cam"
    at.switch_page("ui/page_compare.py").run()  # another page keeps the view in its address
    assert not at.exception and at.query_params["target"] == "417" and at.query_params["sample"] == "rocket"


def test_invalid_values_are_noted_on_the_page_and_the_rest_applies(tiny_model):
    at = app_with({"sample": "no_such_photo", "steps": "7", "methods": "grad_cam", "target": "99999"}).run()
    assert not at.exception and not at.error
    said = " ".join(warnings(at))
    assert "no_such_photo" in said and "'7'" in said and "classes 0 to 999" in said
    assert at.multiselect(key="methods").value == ["grad_cam"]
    assert at.pills(key="sample").value == "cat.jpg"  # the default sample
    at.button(key="address_notes_dismiss").click().run()
    assert warnings(at) == []


def test_an_upload_cannot_travel_in_a_link_and_the_page_says_so(tiny_model):
    at = app_with({}).run()
    at.file_uploader(key="upload").set_value(("mine.jpg", sample_bytes("coffee.jpg"), "image/jpeg")).run()
    assert not at.exception and at.query_params["sample"] == UPLOADED
    assert any("cannot carry your photo" in c.value for c in at.sidebar.caption)
    fresh = app_with(dict(at.query_params)).run()  # the link someone else opens
    assert not fresh.exception and fresh.pills(key="sample").value == "cat.jpg"
    assert any("uploaded photo" in w for w in warnings(fresh))


def test_presentation_mode_travels_in_the_link(tiny_model):
    at = app_with({"present": "1", "methods": "grad_cam"}).run()
    assert not at.exception and at.toggle(key="present").value is True
    assert at.query_params["present"] == "1"
    assert any("font-size: 19px" in h.proto.body for h in at.get("html"))  # large type
    at.toggle(key="present").set_value(False).run()
    assert "present" not in at.query_params and not [h for h in at.get("html") if "font-size" in h.proto.body]
