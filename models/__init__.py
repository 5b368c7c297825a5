"""Model zoo and image input. See ../shared/CONTRACT.md for the API other parts rely on."""
from .bundle import ModelBundle, default_device, wrap
from .image_io import ImageError, read_image
from .imagenet import IMAGENET_CATEGORIES
from .zoo import DEFAULT_MODEL, SPECS, ModelInfo, ModelUnavailable, list_models, load_model

__all__ = [
    "DEFAULT_MODEL", "IMAGENET_CATEGORIES", "ImageError", "ModelBundle", "ModelInfo", "ModelUnavailable", "SPECS",
    "default_device", "list_models", "load_model", "read_image", "wrap",
]
