"""The 1000 ImageNet class names, as torchvision ships them (no download needed)."""
from torchvision.models._meta import _IMAGENET_CATEGORIES

IMAGENET_CATEGORIES: tuple[str, ...] = tuple(_IMAGENET_CATEGORIES)
assert len(IMAGENET_CATEGORIES) == 1000
