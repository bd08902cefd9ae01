"""Tests of d2lkit.compare: training to a target with pure optimizers, and random search."""

import math

import pytest
import torch
from torch import nn

from d2lkit import compare, optim


def separable(n=256, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, generator=gen)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).long()
    return X, y


def accuracy(X, y):
    def evaluate(net):
        with torch.no_grad():
            return (net(X).argmax(1) == y).float().mean().item()
    return evaluate


def test_reaches_target_and_records_curve():
    torch.manual_seed(0)
    X, y = separable()
    net = nn.Linear(5, 2)
    batches = [(X[i:i + 32], y[i:i + 32]) for i in range(0, len(y), 32)]
    run = compare.steps_to_target(net, optim.adamw(lr=0.05), batches, accuracy(X, y), 0.95,
                                  max_steps=500, eval_every=5)
    assert run.reached and run.metric >= 0.95 and run.steps % 5 == 0
    assert run.curve[-1] == (run.steps, run.metric) and run.seconds > 0


def test_budget_exhausted_and_divergence():
    torch.manual_seed(0)
    X, y = separable()
    batches = [(X, y)]
    run = compare.steps_to_target(nn.Linear(5, 2), optim.sgd(lr=0.0), batches, accuracy(X, y),
                                  1.01, max_steps=7, eval_every=3)
    assert not run.reached and run.steps == 7 and [s for s, _ in run.curve] == [3, 6, 7]
    diverged = compare.steps_to_target(nn.Linear(5, 2), optim.sgd(lr=1e200), batches,
                                       accuracy(X, y), 1.01, max_steps=50)
    assert not diverged.reached and diverged.steps < 50 and math.isnan(diverged.metric)


def test_schedule_free_is_evaluated_at_the_average():
    torch.manual_seed(0)
    X, y = separable()
    net = nn.Linear(5, 2)
    seen = []

    def evaluate(net):
        seen.append([p.detach().clone() for p in net.parameters()])
        return 0.0

    opt = optim.schedule_free_sgd(lr=0.5, momentum=0.9)
    compare.steps_to_target(net, opt, [(X, y)], evaluate, 1.0, max_steps=4, eval_every=4)
    # replay the same four steps by hand: the evaluated weights are x, not y
    torch.manual_seed(0)
    ref = nn.Linear(5, 2)
    params = [p.detach().clone() for p in ref.parameters()]
    state = opt.init(params)
    for _ in range(4):
        for p, v in zip(ref.parameters(), params, strict=True):
            p.data.copy_(v)
        grads = torch.autograd.grad(nn.functional.cross_entropy(ref(X), y), list(ref.parameters()))
        params, state = opt.update(list(grads), state, params, opt.hp)
    for a, b in zip(seen[0], optim.eval_params(state), strict=True):
        torch.testing.assert_close(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(seen[0], params, strict=True))


def test_schedule_sets_the_rate():
    X, y = separable()
    net = nn.Linear(5, 2)
    before = [p.detach().clone() for p in net.parameters()]
    compare.steps_to_target(net, optim.sgd(lr=1.0), [(X, y)], lambda n: 0.0, 1.0,
                            max_steps=3, schedule=lambda t: 0.0)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_log_uniform_trials():
    space = {"lr": (1e-4, 1e-1), "weight_decay": (1e-3, 1.0)}
    a = compare.log_uniform_trials(space, 50, seed=3)
    assert a == compare.log_uniform_trials(dict(space), 50, seed=3)
    assert a != compare.log_uniform_trials(space, 50, seed=4)
    assert all(1e-4 <= t["lr"] <= 1e-1 and 1e-3 <= t["weight_decay"] <= 1.0 for t in a)
    logs = [math.log10(t["lr"]) for t in a]
    assert min(logs) < -3.3 and max(logs) > -1.7  # spread over the decades, not clumped
    with pytest.raises(ValueError, match="Invalid lr low"):
        compare.log_uniform_trials({"lr": (0.0, 1.0)}, 3)
    with pytest.raises(TypeError, match="Invalid n_trials"):
        compare.log_uniform_trials(space, 2.0)


def test_best_so_far():
    assert compare.best_so_far([5.0, math.inf, 3.0, 4.0, 1.0]) == [5.0, 5.0, 3.0, 3.0, 1.0]
    assert compare.best_so_far([math.inf, 2.0]) == [math.inf, 2.0]


def test_teacher_task():
    X, y, Xt, yt = compare.teacher_task(500, 200, dim=8, classes=4, seed=1)
    assert X.shape == (500, 8) and Xt.shape == (200, 8) and y.shape == (500,)
    X2, y2, _, _ = compare.teacher_task(500, 200, dim=8, classes=4, seed=1)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    counts = torch.bincount(torch.cat([y, yt]), minlength=4)
    assert int(counts.min()) > 50  # every class occurs: the task is not trivial
    assert not torch.equal(y, compare.teacher_task(500, 200, dim=8, classes=4, seed=2)[1])
    with pytest.raises(ValueError, match="Invalid classes"):
        compare.teacher_task(10, 10, classes=1)


def test_with_weight_decay_is_l2_for_sgd():
    gen = torch.Generator().manual_seed(0)
    x_a = x_b = [torch.ones(3, dtype=torch.float64)]
    decayed, sgd = compare.with_weight_decay(optim.sgd(0.1), 0.2), optim.sgd(0.1)
    for _ in range(20):
        g = torch.randn(3, generator=gen, dtype=torch.float64)
        x_a, _ = decayed.update([g], decayed.init(x_a), x_a, decayed.hp)
        x_b, _ = sgd.update([g + 0.2 * x_b[0]], sgd.init(x_b), x_b, sgd.hp)
    torch.testing.assert_close(x_a[0], x_b[0], rtol=1e-13, atol=1e-15)
    assert decayed.hp == {"lr": 0.1, "weight_decay": 0.2}
    with pytest.raises(ValueError, match="Invalid weight_decay"):
        compare.with_weight_decay(optim.sgd(0.1), -1.0)
    with pytest.raises(TypeError, match="Invalid opt"):
        compare.with_weight_decay("sgd", 0.1)
