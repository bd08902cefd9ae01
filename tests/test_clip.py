"""d2lkit.clip checked against torch.nn.utils.clip_grad_norm_."""

import pytest
import torch
from torch import nn

from d2lkit.clip import clip_grad_norm_, global_grad_norm


def two_models_with_grads(scale):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    twin = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    twin.load_state_dict(net.state_dict())
    X = torch.randn(11, 5)
    for m in (net, twin):
        (scale * m(X).square().sum()).backward()
    return net, twin


@pytest.mark.parametrize("scale", [1e-3, 1.0, 100.0])
@pytest.mark.parametrize("max_norm", [0.5, 5.0])
def test_matches_torch(scale, max_norm):
    net, twin = two_models_with_grads(scale)
    ours = clip_grad_norm_(net.parameters(), max_norm)
    theirs = nn.utils.clip_grad_norm_(twin.parameters(), max_norm)
    torch.testing.assert_close(ours, theirs)
    for p, q in zip(net.parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad)
    assert float(global_grad_norm(net.parameters())) <= max_norm * (1 + 1e-5)


def test_parameters_without_grad_and_bad_arguments():
    p, q = torch.ones(3, requires_grad=True), torch.ones(2, requires_grad=True)
    p.grad = torch.tensor([3.0, 0.0, 4.0])
    assert float(clip_grad_norm_([p, q], 1.0)) == pytest.approx(5.0)
    torch.testing.assert_close(p.grad, torch.tensor([0.6, 0.0, 0.8]), rtol=1e-5, atol=1e-6)
    assert q.grad is None and float(global_grad_norm([q])) == 0.0
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_([p], 0.0)
    with pytest.raises(ValueError, match="eps"):
        clip_grad_norm_([p], 1.0, eps=-1.0)
