"""FLOPs of a feed-forward network of convolutions and linear layers, counted with hooks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

INPUT_SHAPE = (1, 28, 28)


def layer_flops(net: nn.Module, input_shape: Sequence[int] = INPUT_SHAPE) -> list[tuple[str, int]]:
    """Return the forward FLOPs per example (2 per multiply-add) of each conv and linear layer."""
    counts: list[tuple[str, int]] = []

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_output = module.in_channels // module.groups * kh * kw
            counts.append((name_of[module], 2 * output[0].numel() * per_output))
        else:
            counts.append((name_of[module], 2 * module.in_features * module.out_features))

    name_of = {m: n for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    handles = [m.register_forward_hook(hook) for m in name_of]
    try:
        with torch.no_grad():
            net(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return counts


def model_flops(net: nn.Module, input_shape: Sequence[int] = INPUT_SHAPE) -> tuple[int, int]:
    """Return the (forward, training) FLOPs per example of a feed-forward conv/linear network.

    A training step runs the forward pass, then for every layer the gradient with respect to its
    weights and the gradient with respect to its input, each as costly as the layer's forward
    pass; the first layer skips the input gradient, since the data need none.
    """
    layers = layer_flops(net, input_shape)
    forward = sum(f for _, f in layers)
    return forward, 3 * forward - layers[0][1]
