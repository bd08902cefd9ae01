"""The small models the chapters share."""

from __future__ import annotations

import torch
from torch import nn


def linreg(X: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Return the linear model's predictions ``X @ w + b``."""
    return X @ w + b


def squared_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the elementwise squared loss ``(y_hat - y)^2 / 2`` (``y`` reshaped like ``y_hat``)."""
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2


def lenet() -> nn.Sequential:
    """Return LeNet-5 in its modern form (ReLU, max-pooling) for 1x28x28 inputs and 10 classes.

    Each convolution is followed by 2x2 max-pooling and then the ReLU. The reference applies the
    ReLU first; since the ReLU is monotone, both orders compute the same function with the same
    gradients, bit for bit, but pooling first lets the ReLU and its backward pass touch four
    times fewer elements and, with channels-last inputs, spares the ReLU's backward a mix of
    two memory layouts, which makes a CPU training step faster (see the page *How fast is this
    book?*). The parameters (and the ``state_dict`` keys) are those of the reference order.
    """
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2),
        nn.MaxPool2d(kernel_size=2, stride=2), nn.ReLU(),
        nn.Conv2d(6, 16, kernel_size=5),
        nn.MaxPool2d(kernel_size=2, stride=2), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


def reference_order(net: nn.Sequential) -> nn.Sequential:
    """Return ``net`` with each max-pooling that feeds a ReLU moved after it, as the seeds have it.

    :func:`lenet` pools before the ReLU; the seeds' LeNet applies the ReLU first. The two compute
    the same function with the same gradients (the modules, and so the weights, are shared with
    ``net``), which the tests check bit for bit.
    """
    layers = list(net)
    for i in range(len(layers) - 1):
        if isinstance(layers[i], nn.MaxPool2d) and isinstance(layers[i + 1], nn.ReLU):
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
    return nn.Sequential(*layers)
