"""Every method of the contract has a card, and each card says what the issue asks it to say."""
from __future__ import annotations

import pytest

from explainers import list_methods
from teaching.cards import CARD_KEYS, card, card_ids, card_markdown

CONTRACT_IDS = ["cam", "grad_cam", "grad_cam_pp", "hires_cam", "layer_cam", "score_cam", "saliency",
                "input_x_gradient", "guided_backprop", "deconvnet", "guided_grad_cam", "integrated_gradients",
                "expected_gradients", "deeplift", "xgrad_cam", "eigen_cam", "ablation_cam", "guided_ig", "blur_ig", "xrai",
                "occlusion", "rise", "kernel_shap", "lrp_epsilon_plus_flat", "lrp_epsilon_gamma_box"]


@pytest.mark.parametrize("method", CONTRACT_IDS)
def test_every_contract_method_has_a_complete_one_line_card(method):
    c = card(method)
    for key in CARD_KEYS:
        assert isinstance(c[key], str) and c[key].strip(), (method, key)
    assert "\n" not in c["formula"] and len(c["formula"]) <= 100
    assert c["title"] in card_markdown(method) and c["formula"] in card_markdown(method)


def test_registered_methods_all_have_cards_with_their_titles():
    ids = set(card_ids())
    for info in list_methods():
        assert info.id in ids, f"{info.id} is registered but has no card"
        assert card(info.id)["title"].split(" (")[0].lower()[:8] == info.title.split(" (")[0].lower()[:8]


@pytest.mark.parametrize("method, words", [
    ("cam", ["global-average-pool", "Linear"]),
    ("guided_backprop", ["not class-discriminative", "randomised"]),
    ("saliency", ["saturate"]),
    ("input_x_gradient", ["saturation"]),
    ("integrated_gradients", ["baseline", "completeness"]),
    ("deeplift", ["implementation invariance"]),
    ("expected_gradients", ["seed"]),
    ("eigen_cam", ["not class-discriminative", "sign"]),
    ("ablation_cam", ["one forward per channel"]),
    ("score_cam", ["64"]),
    ("guided_ig", ["sequential", "baseline"]),
    ("blur_ig", ["no baseline"]),
    ("xrai", ["base attribution", "segment"]),
    ("lrp_epsilon_plus_flat", ["first layer", "convolutions", "fully connected", "BatchNorm", "biases"]),
    ("lrp_epsilon_gamma_box", ["first convolution", "γ", "ε"]),
    ("occlusion", ["window"]),
    ("rise", ["seed"]),
    ("kernel_shap", ["segmentation", "efficiency"]),
])
def test_cards_name_the_known_weaknesses(method, words):
    text = " ".join(card(method).values()).lower()
    for word in words:
        assert word.lower() in text, (method, word)


def test_card_is_a_copy_and_unknown_ids_are_refused():
    card("cam")["title"] = "changed"
    assert card("cam")["title"] == "CAM"
    with pytest.raises(KeyError, match="No card for method 'nope'"):
        card("nope")
