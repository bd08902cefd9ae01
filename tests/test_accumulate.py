import pytest
import torch
from torch import nn

from d2lkit.accumulate import accumulation_step, grouped, train_accumulated


def make_data(n=103, d=5, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (n,), generator=g)
    return X, y


def make_net(seed=1, d=5, classes=3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 7), nn.Tanh(), nn.Linear(7, classes)).double()


def per_example(y_hat, y):
    return nn.functional.cross_entropy(y_hat, y, reduction="none")


def big_batch_steps(X, y, bounds, reduction, momentum=0.9):
    """Reference: plain torch.optim.SGD on the big batches X[a:b] with a reduced loss."""
    net = make_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=momentum)
    losses = []
    for a, b in bounds:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(X[a:b]), y[a:b], reduction=reduction)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return net, losses


def micro_batches(X, y, size):
    return [(X[i : i + size], y[i : i + size]) for i in range(0, len(y), size)]


def assert_same_params(a, b):
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-13)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_one_step_equals_big_batch_with_uneven_micro_batches(reduction):
    X, y = make_data(n=27)
    ref, (ref_loss,) = big_batch_steps(X, y, [(0, 27)], reduction)
    net = make_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    loss = accumulation_step(net, per_example, micro_batches(X, y, 10), opt, reduction=reduction)
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    assert_same_params(net, ref)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_epoch_with_short_last_group_equals_big_batches(reduction):
    # 103 examples in micro-batches of 10 -> 11 micro-batches (the last holds 3);
    # 4 steps of accumulation -> groups of 40, 40 and 23 examples.
    X, y = make_data(n=103)
    ref, ref_losses = big_batch_steps(X, y, [(0, 40), (40, 80), (80, 103)], reduction)
    net = make_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    losses = train_accumulated(net, per_example, micro_batches(X, y, 10), opt, 4,
                               reduction=reduction)
    assert losses == pytest.approx(ref_losses, rel=1e-13)
    assert_same_params(net, ref)


def test_mean_differs_from_naive_division_on_short_group():
    # dividing each micro-batch loss by the number of micro-batches (not examples) is wrong
    # for a short group: the helper must not behave that way
    X, y = make_data(n=23)
    net = make_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    accumulation_step(net, per_example, micro_batches(X, y, 10), opt)
    naive = make_net()
    opt = torch.optim.SGD(naive.parameters(), lr=0.1)
    opt.zero_grad()
    for xb, yb in micro_batches(X, y, 10):
        (nn.functional.cross_entropy(naive(xb), yb) / 3).backward()
    opt.step()
    ref, _ = big_batch_steps(X, y, [(0, 23)], "mean", momentum=0.0)
    assert_same_params(net, ref)
    assert not torch.allclose(naive[0].weight, ref[0].weight, rtol=0, atol=1e-6)


def test_adam_state_matches_big_batch():
    X, y = make_data(n=50)
    ref = make_net()
    ref_opt = torch.optim.Adam(ref.parameters(), lr=0.01)
    net = make_net()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(3):
        ref_opt.zero_grad()
        nn.functional.cross_entropy(ref(X), y).backward()
        ref_opt.step()
        accumulation_step(net, per_example, micro_batches(X, y, 8), opt)
    assert_same_params(net, ref)


def test_grouped_keeps_the_remainder():
    assert list(grouped(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(grouped([], 3)) == []


def test_validation():
    X, y = make_data(n=10)
    net = make_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    batches = micro_batches(X, y, 5)
    with pytest.raises(ValueError, match="Invalid reduction: 'none'"):
        accumulation_step(net, per_example, batches, opt, reduction="none")
    with pytest.raises(ValueError, match="one loss per example"):
        accumulation_step(net, nn.CrossEntropyLoss(), batches, opt)
    with pytest.raises(ValueError, match="Invalid micro_batches"):
        accumulation_step(net, per_example, [], opt)
    with pytest.raises(ValueError, match="Invalid accum_steps: 0"):
        train_accumulated(net, per_example, batches, opt, 0)
    with pytest.raises(ValueError, match="Invalid size: 0"):
        list(grouped(batches, 0))
    with pytest.raises(TypeError, match=r"Invalid accum_steps: 2\.5"):
        train_accumulated(net, per_example, batches, opt, 2.5)
