"""Shared fixtures: real bundled model, small torchvision architectures with seeded random weights, samples."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "assets" / "samples"
ARTIFACTS = ROOT / "test-artifacts"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
# Tests compare runs exactly; cuDNN's fastest backward algorithms are not deterministic.
torch.backends.cudnn.deterministic = True
torch.backends.cudnn.benchmark = False

from models import default_device, load_model, read_image, wrap  # noqa: E402

DEVICE = default_device()  # where the fixtures' models live, and so where test inputs are made: CUDA when present


@pytest.fixture(autouse=True)
def compute_without_clicks(monkeypatch):
    """The app asks for a click before work it expects to be slow, from timings on this machine; a loaded test
    machine would gate different tiles on every run. Tests of the gate lower the limit themselves."""
    from ui import estimates

    monkeypatch.setattr(estimates, "CLICK_ABOVE_S", float("inf"))


def randn(*shape: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Seeded noise (drawn on the CPU, so equal on every machine) on the test device."""
    return torch.randn(*shape, generator=generator).to(DEVICE)


def to_numpy(t) -> "np.ndarray":
    import numpy as np

    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


@pytest.fixture
def explain_calls(monkeypatch):
    """Count calls of explainers.explain made by the app (its method ids, in order)."""
    import explainers
    import ui.common

    calls = []
    real = explainers.explain

    def counting(*args, **kwargs):
        calls.append(kwargs.get("method"))
        return real(*args, **kwargs)

    monkeypatch.setattr(explainers, "explain", counting)
    ui.common.explanation_store.clear()  # results of earlier tests would hide the first computation
    return calls


def shows_source(at, source: str) -> bool:
    """Whether an AppTest run shows the image's source ("upload: NAME") as the pages write it: literally."""
    from ui.common import literal

    return any(literal(source) in c.value for c in at.caption)


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@pytest.fixture(scope="session")
def lite0():
    return load_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def resnet18():
    import torchvision

    torch.manual_seed(0)
    m = torchvision.models.resnet18(weights=None)
    return wrap(m, target_layer=m.layer4, classifier=m.fc, name="resnet18-random")


@pytest.fixture(scope="session")
def vgg11():
    import torchvision

    torch.manual_seed(0)
    m = torchvision.models.vgg11(weights=None)
    return wrap(m, target_layer=m.features[19], classifier=None, name="vgg11-random")


@pytest.fixture(scope="session")
def cat_image():
    return read_image(sample_bytes("cat.jpg"))


@pytest.fixture(scope="session")
def coffee_image():
    return read_image(sample_bytes("coffee.jpg"))


@pytest.fixture(scope="session")
def two_objects_image():
    return read_image(sample_bytes("cat_and_espresso.jpg"))


@pytest.fixture(scope="session")
def artifacts_dir():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


class TinyImageNetCNN(torch.nn.Module):
    """conv → ReLU → max-pool → conv → ReLU → GAP → Linear over the 1000 ImageNet classes: app tests stay fast."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                            torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU())
        self.fc = torch.nn.Linear(16, 1000)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


@pytest.fixture
def tiny_model(monkeypatch):
    """Every model name the app asks for loads a tiny random CNN (48 px); cached results of others are dropped."""
    import ui.common

    torch.manual_seed(0)
    net = TinyImageNetCNN()
    bundle = wrap(net, target_layer=net.features, classifier=net.fc, input_size=(48, 48), name="tiny-cnn")
    monkeypatch.setattr(ui.common, "_load_cached", lambda name: bundle)
    ui.common.explanation_store().items.clear()
    return bundle


def rel_err(ours, ref) -> float:
    """Max absolute difference relative to the reference's largest magnitude (the issues' "max relative error")."""
    import numpy as np

    ours, ref = to_numpy(ours).astype(np.float64), to_numpy(ref).astype(np.float64)
    assert ours.shape == ref.shape
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-30))
