"""`ModelBundle`: a classifier together with everything needed to feed it and to explain it.

Preprocessing travels with the model (as in timm's pretrained configs), so nothing else in the project
hard-codes an input size, a mean or a std.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2 as T
from torchvision.transforms import InterpolationMode

from .imagenet import IMAGENET_CATEGORIES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def use_full_float32_on_cuda() -> None:
    """Turn off TF32 for cuDNN convolutions and CUDA matmuls, process-wide (PyTorch allows it for convolutions
    by default): attributions are sums of many small gradient terms, and with TF32 a map depends on the card
    (bench/README.md). `wrap` calls it when it places a model on CUDA."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


@dataclass(eq=False)  # identity hashing: bundles are shared, cached objects
class ModelBundle:
    model: torch.nn.Module
    name: str
    categories: list[str]
    input_size: tuple[int, int] = (224, 224)
    resize_size: int | None = None  # shorter side before the centre crop; None: resize straight to input_size
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    target_layer: torch.nn.Module | None = None
    classifier: torch.nn.Linear | None = None
    # Why CAM cannot run on this head (None when `classifier` is usable).
    cam_unavailable_reason: str | None = None
    # Elementwise function the head applies to target_layer's output before pooling (DenseNet: F.relu).
    pooled_activation: Callable[[torch.Tensor], torch.Tensor] | None = None
    title: str = ""
    device: torch.device = field(default_factory=default_device)
    # Guards the few operations that must not interleave (e.g. parameter randomisation on a copy).
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        self.model = self.model.to(self.device).eval()
        if self.device.type == "cpu":
            # Channels-last convolution weights make oneDNN run every convolution in NHWC, whatever the input's
            # layout: faster forward+backward on the CPU, slower on CUDA (bench/README.md). Values are unchanged;
            # only the order of float32 sums differs, as between any two kernels.
            self.model = self.model.to(memory_format=torch.channels_last)
        self.title = self.title or self.name
        if self.classifier is None and self.cam_unavailable_reason is None:
            self.cam_unavailable_reason = "this model has no global-average-pool → Linear head"
        interp = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}[self.interpolation]
        resize = self.resize_size if self.resize_size is not None else list(self.input_size)
        self._transform = T.Compose([
            T.ToImage(),
            T.Resize(resize, interpolation=interp, antialias=True),
            T.CenterCrop(list(self.input_size)),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(list(self.mean), list(self.std)),
        ])
        self._mean_t = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
        self._std_t = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """PIL image → normalised `(1, 3, H, W)` float tensor on the model's device."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        return self._transform(image).unsqueeze(0).to(self.device)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixel space [0, 1] → model input space (any leading batch shape)."""
        return (pixels - self._mean_t.to(pixels)) / self._std_t.to(pixels)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Model input space → pixel space (unclipped)."""
        return x * self._std_t.to(x) + self._mean_t.to(x)

    def to_image(self, x: torch.Tensor) -> np.ndarray:
        """`(1, 3, H, W)` or `(3, H, W)` model input → `(H, W, 3)` float array in [0, 1] for overlays."""
        x = x.detach()
        if x.dim() == 4:
            x = x[0]
        pixels = self.denormalize(x.float()).clamp(0, 1)
        return pixels.permute(1, 2, 0).cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, k: int = 5) -> list[tuple[int, str, float]]:
        """Top-k `(class index, class name, probability)` for a `(1, 3, H, W)` input."""
        probs = torch.softmax(self.model(x.to(self.device)).float(), dim=1)[0]
        top = torch.topk(probs, min(k, probs.numel()))
        return [(int(i), self.category(int(i)), float(p)) for p, i in zip(top.values, top.indices)]

    def category(self, index: int) -> str:
        return self.categories[index] if 0 <= index < len(self.categories) else f"class {index}"


def wrap(
    module: torch.nn.Module,
    target_layer: torch.nn.Module | None = None,
    classifier: torch.nn.Linear | None = None,
    input_size: tuple[int, int] = (224, 224),
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    categories: list[str] | None = None,
    name: str = "custom",
    **extra,
) -> ModelBundle:
    """Bundle any classifier module so the explainers and the app can use it."""
    if categories is None:
        categories = list(IMAGENET_CATEGORIES)
    if classifier is not None and not isinstance(classifier, torch.nn.Linear):
        raise TypeError("classifier must be the final torch.nn.Linear of a global-average-pool head")
    if torch.device(extra.get("device") or default_device()).type == "cuda":
        use_full_float32_on_cuda()
    return ModelBundle(
        model=module, name=name, categories=list(categories), input_size=tuple(input_size),
        mean=tuple(mean), std=tuple(std), target_layer=target_layer, classifier=classifier, **extra,
    )
