"""Backtracking line search checked against the closed-form Armijo bound of a quadratic."""

import itertools
import math

import pytest
import torch

from d2lkit.line_search import armijo, gd_armijo


def quadratic(lams):
    lams = torch.tensor(lams, dtype=torch.float64)
    return (lambda x: 0.5 * (lams * x**2).sum()), (lambda x: lams * x)


@pytest.mark.parametrize("lam", [0.3, 1.0, 3.0, 40.0])
@pytest.mark.parametrize(("beta", "c"), [(0.5, 1e-4), (0.8, 0.3)])
def test_armijo_returns_the_largest_accepted_trial(lam, beta, c):
    # On f = lam x^2 / 2 with d = -g, Armijo holds iff lr <= 2 (1 - c) / lam.
    f, grad = quadratic([lam])
    x = torch.tensor([2.0], dtype=torch.float64)
    lr, evals = armijo(f, x, grad(x), lr0=1.0, beta=beta, c=c)
    k = max(0, math.ceil(math.log(2 * (1 - c) / lam) / math.log(beta)))
    assert lr == pytest.approx(beta**k)
    assert evals == k + 1


def test_armijo_condition_with_autograd_gradient_and_explicit_direction():
    A = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)

    def f(x):
        return 0.5 * x @ A @ x + torch.sin(x).sum()

    x = torch.tensor([1.5, -2.0], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(f(x), x)
    x = x.detach()
    d = -torch.tensor([1.0, 0.0], dtype=torch.float64) * torch.sign(g[0])
    lr, _ = armijo(f, x, g, d, lr0=4.0, beta=0.5, c=1e-4)
    assert f(x + lr * d) <= f(x) + 1e-4 * lr * (g @ d)
    assert f(x + 2 * lr * d) > f(x) + 1e-4 * 2 * lr * (g @ d)


def test_gd_armijo_converges_and_counts():
    f, grad = quadratic([1.0, 10.0])
    run = gd_armijo(f, grad, torch.tensor([1.0, 1.0]), 200)
    assert float(torch.linalg.vector_norm(run.path[-1])) < 1e-6
    assert run.gradient_evals == len(run.lrs) == len(run.path) - 1
    trials = sum(round(math.log(lr) / math.log(0.5)) + 1 for lr in run.lrs)
    assert run.function_evals == run.gradient_evals + trials
    values = [float(f(x)) for x in run.path]
    assert all(b < a for a, b in itertools.pairwise(values))


def test_bad_arguments_raise():
    f, grad = quadratic([1.0])
    x = torch.tensor([1.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="direction"):
        armijo(f, x, grad(x), grad(x))
    for kwargs, name in [({"beta": 1.0}, "beta"), ({"c": 0.0}, "c"), ({"lr0": -1.0}, "lr0"),
                         ({"max_evals": 0}, "max_evals")]:
        with pytest.raises(ValueError, match=name):
            armijo(f, x, grad(x), **kwargs)
    with pytest.raises(RuntimeError, match="No step"):
        armijo(lambda z: z.sum() * 0 + 1.0 + (z != x).any().double(), x, grad(x), max_evals=3)
