"""Newton's method checked against steps built from autograd derivatives and closed forms."""

import itertools
import math

import pytest
import torch

from d2lkit import toy
from d2lkit.newton import newton_1d


def autograd_newton_step(f, x, lr=1.0, damped=False):
    x = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(f(x), x, create_graph=True)
    (h,) = torch.autograd.grad(g, x)
    if damped:
        h = h.abs()
    return float((x - lr * g / h).detach())


@pytest.mark.parametrize("objective", [toy.cosh(), toy.x_cos()])
@pytest.mark.parametrize("damped", [False, True])
def test_each_step_matches_autograd(objective, damped):
    path = newton_1d(objective, 3.0, 4, lr=0.7, damped=damped)
    for a, b in itertools.pairwise(path):
        assert float(b) == pytest.approx(autograd_newton_step(objective.f, float(a), 0.7, damped))


def test_quadratic_in_one_step_and_quadratic_convergence_on_cosh():
    assert newton_1d(toy.square(), 10.0, 1)[-1].item() == 0.0
    errors = newton_1d(toy.cosh(), 2.0, 5).abs()
    # cosh(cx): x - tanh(cx)/c = c^2 x^3 / 3 + O(x^5), so e_{t+1} / e_t^3 -> c^2 / 3 (cubic here,
    # since f''' = 0 at the minimum); at least quadratic.
    assert errors[3] < errors[2] ** 2 and errors[4] < errors[3] ** 2
    assert float(errors[3] / errors[2] ** 3) == pytest.approx(0.25 / 3, rel=1e-2)


def test_undamped_newton_can_find_a_maximum_and_damped_descends():
    f = toy.x_cos()
    x = newton_1d(f, 10.0, 20)[-1]
    assert abs(float(f.grad(x))) < 1e-10 and float(f.hess(x)) < 0
    path = newton_1d(f, 10.0, 50, lr=0.5, damped=True)
    values = f.f(path)
    assert bool((values[1:] <= values[:-1] + 1e-12).all()) and float(f.hess(path[-1])) > 0


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"lr": 0.0}, "lr"), ({"steps": -1}, "steps"), ({"min_curvature": -1.0}, "min_curvature"),
    ({"x0": math.nan}, "x0")])
def test_bad_arguments_raise(kwargs, match):
    args = {"x0": 1.0, "steps": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        newton_1d(toy.cosh(), **args)
