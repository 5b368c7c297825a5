"""Attribution methods for CNN classifiers, on torch tensors. See ../shared/CONTRACT.md for the API.

    from explainers import explain, list_methods
    exp = explain(bundle, x, target=281, method="integrated_gradients", steps=64)
"""
from .api import explain
from .base import BadRequest, Explanation, IGTrace, MethodInfo, NotApplicable, model_untouched, normalize_map
from .registry import list_methods, method_info

# Importing a method module registers its methods; the order here is the order the app lists them in.
from . import cam, cam_gradient_free, gradients, guided, integrated, expected, deeplift  # noqa: E402,F401
from . import guided_ig, blur_ig, xrai, lrp, perturbation, shap  # noqa: E402,F401

__all__ = ["BadRequest", "Explanation", "IGTrace", "MethodInfo", "NotApplicable", "explain", "list_methods", "method_info",
           "model_untouched", "normalize_map"]
