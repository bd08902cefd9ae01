"""Checks of the shared models against the seeds' references."""

from __future__ import annotations

import torch
from torch import nn

from d2lkit import models


def test_lenet_shapes_and_parameters():
    net = models.lenet()
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == {
        "0.weight": (6, 1, 5, 5), "0.bias": (6,), "3.weight": (16, 6, 5, 5), "3.bias": (16,),
        "7.weight": (120, 400), "7.bias": (120,), "9.weight": (84, 120), "9.bias": (84,),
        "11.weight": (10, 84), "11.bias": (10,),
    }


def test_reference_order_puts_relu_before_pooling_and_shares_weights():
    net = models.lenet()
    reference = models.reference_order(net)
    assert [type(m).__name__ for m in reference][:6] == [
        "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d"]
    assert all(p is q for p, q in zip(net.parameters(), reference.parameters()))


def test_lenet_pooling_first_is_the_reference_function_bit_for_bit():
    torch.manual_seed(0)
    net = models.lenet()
    reference = models.reference_order(net)
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
