"""Checks of the shared models against independent references."""

from __future__ import annotations

import torch
from torch import nn

from d2lkit import models


def _reference_lenet(net: nn.Sequential) -> nn.Sequential:
    """The reference's LeNet (ReLU before each pooling), sharing ``net``'s layers and weights."""
    conv1, pool1, relu1, conv2, pool2, relu2, *head = net
    return nn.Sequential(conv1, relu1, pool1, conv2, relu2, pool2, *head)


def test_lenet_shapes_and_parameters():
    net = models.lenet()
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == {
        "0.weight": (6, 1, 5, 5), "0.bias": (6,), "3.weight": (16, 6, 5, 5), "3.bias": (16,),
        "7.weight": (120, 400), "7.bias": (120,), "9.weight": (84, 120), "9.bias": (84,),
        "11.weight": (10, 84), "11.bias": (10,),
    }


def test_lenet_pooling_first_is_the_reference_function_bit_for_bit():
    torch.manual_seed(0)
    net = models.lenet()
    reference = _reference_lenet(net)
    X = torch.randn(16, 1, 28, 28)
    X[:, :, :6] = 0.0  # flat regions: ties inside the pooling windows
    X[:, :, 6:10] = -1.0  # windows where every activation is cut by the ReLU
    results = []
    for model in (net, reference):
        model.zero_grad()
        out = model(X)
        nn.functional.cross_entropy(out, torch.arange(16) % 10).backward()
        results.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
    (out_a, grads_a), (out_b, grads_b) = results
    assert torch.equal(out_a, out_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))
