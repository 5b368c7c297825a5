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

from models import load_model, read_image, wrap  # noqa: E402


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
