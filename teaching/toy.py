"""The seed's toy networks, as classifiers the real explainers can run on.

Each takes the contract's `(N, 3, H, W)` input and reads its scalars from pixel (0, 0): channel 0 is `x1`,
channel 1 is `x2` (the third channel is ignored), and returns a single logit `(N, 1)`. `toy_bundle` wraps one
with an identity normalisation, so a pixel value *is* the network's input and the "black" baseline is 0.
"""
from __future__ import annotations

import torch
from torch import nn

from models import wrap


def _scalar(x: torch.Tensor, channel: int = 0) -> torch.Tensor:
    return x[:, channel, 0, 0]


class OneMinusReLU(nn.Module):
    """`f(x) = 1 − ReLU(1 − x)`: rises with slope 1 until x = 1, then is flat (Sensitivity(a) fails for gradients).

    With baseline 0 and input 2, f changes by 1 but the gradient at the input is 0, so gradient × input says 0
    while Integrated Gradients gives the whole change, 1.
    """

    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (1 - self.relu(1 - _scalar(x)))[:, None]


class SaturatingUnit(nn.Module):
    """A sigmoid-like unit `f(x) = σ(k (x − c))`: steep around c, flat (saturated) far from it.

    Between a baseline and an input both far from c the gradient is almost 0 at both ends, yet f changes by
    almost 1: the change happens in the middle of the path, where only a path method looks.
    """

    def __init__(self, steepness: float = 20.0, centre: float = 0.5) -> None:
        super().__init__()
        self.steepness, self.centre = float(steepness), float(centre)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.steepness * (_scalar(x) - self.centre))[:, None]


class InvarianceNetA(nn.Module):
    """`f(x1, x2) = ReLU(ReLU(x1) − 1 − ReLU(x2))`."""

    def __init__(self) -> None:
        super().__init__()
        self.relu_x1, self.relu_x2, self.relu_out = nn.ReLU(), nn.ReLU(), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1, h2 = self.relu_x1(_scalar(x, 0)), self.relu_x2(_scalar(x, 1))
        return self.relu_out(h1 - 1 - h2)[:, None]


class InvarianceNetB(nn.Module):
    """`g(x1, x2) = ReLU(ReLU(x1 − 1) − ReLU(x2))`: the same function as `InvarianceNetA`, built differently.

    For x1 ≥ 1 both inner terms equal x1 − 1; for x1 < 1 both nets output 0. A method that only looks at the
    function (Integrated Gradients) gives the same attributions to both; a rule applied layer by layer
    (DeepLIFT's Rescale: at (x1, x2) = (3, 1) with baseline 0, A gives (1.5, −0.5) and B gives (2, −1)) need not.
    """

    def __init__(self) -> None:
        super().__init__()
        self.relu_x1, self.relu_x2, self.relu_out = nn.ReLU(), nn.ReLU(), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k1, k2 = self.relu_x1(_scalar(x, 0) - 1), self.relu_x2(_scalar(x, 1))
        return self.relu_out(k1 - k2)[:, None]


def toy_bundle(module: nn.Module, name: str):
    """A `ModelBundle` around a toy net: 1×1 "image", identity normalisation, one class named `f`."""
    return wrap(module, target_layer=None, classifier=None, input_size=(1, 1), mean=(0.0, 0.0, 0.0),
                std=(1.0, 1.0, 1.0), categories=["f"], name=name)


def toy_input(x1: float, x2: float = 0.0, device: torch.device | str = "cpu") -> torch.Tensor:
    """The `(1, 3, 1, 1)` input holding `x1` in channel 0 and `x2` in channel 1."""
    return torch.tensor([x1, x2, 0.0], dtype=torch.float32, device=device).view(1, 3, 1, 1)


def values_and_gradients(module: nn.Module, inputs: torch.Tensor, channel: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`f` and `∂f/∂x_channel` at a batch of `(N, 3, 1, 1)` inputs, for plotting a toy net's curve."""
    inputs = inputs.detach().clone().requires_grad_(True)
    values = module(inputs)[:, 0]
    (grad,) = torch.autograd.grad(values.sum(), inputs)
    return values.detach(), grad[:, channel, 0, 0]


def along_line(start: float, end: float, n: int = 201, channel: int = 0, other: float = 0.0) -> torch.Tensor:
    """`n` toy inputs with channel `channel` going linearly from `start` to `end` (the other channel fixed)."""
    values = torch.linspace(float(start), float(end), n)
    batch = torch.zeros(n, 3, 1, 1)
    batch[:, channel, 0, 0] = values
    batch[:, 1 - channel, 0, 0] = float(other)
    return batch
